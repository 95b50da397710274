//! Decrypting IKEv2 SK payloads, IKEv1 encrypted messages and ESP with given keys.
