//! A Dify-compatible Knowledge API test server.
