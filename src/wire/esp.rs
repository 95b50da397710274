//! ESP (RFC 4303) and AH (RFC 4302) fixed headers.
