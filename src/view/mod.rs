//! The refreshing terminal view and its plain-text and JSON-lines renderings.
