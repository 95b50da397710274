//! IANA registry values of IKEv1 (RFC 2407/2408/2409 and later) and IKEv2 (RFC 7296 and
//! later) as newtypes with constants spelled as the registries spell them.
//!
//! Every registry keeps unknown values: `name()` returns `None` for an unassigned or
//! private-use number and callers print the number instead.

/// Picks the display name of a registry entry: the explicit text, or the constant's name.
macro_rules! entry_name {
    ($k:ident) => {
        stringify!($k)
    };
    ($k:ident $t:literal) => {
        $t
    };
}

/// Declares a registry newtype, its constants and `name()`.
macro_rules! registry {
    (
        $(#[$meta:meta])*
        $name:ident($repr:ty) {
            $($konst:ident = $val:literal $(=> $text:literal)?,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub $repr);

        #[allow(missing_docs)] // each constant is documented by its registry name below
        impl $name {
            $(
                #[doc = entry_name!($konst $($text)?)]
                pub const $konst: $name = $name($val);
            )*

            /// The registry's name for this value, `None` when unassigned or private.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($val => Some(entry_name!($konst $($text)?)),)*
                    _ => None,
                }
            }
        }
    };
}

registry! {
    /// IKEv1 exchange types (RFC 2408 §3.1, RFC 2409 §5, RFC 2409 §5.5 New Group).
    ExchangeV1(u8) {
        BASE = 1 => "Base",
        IDENTITY_PROTECTION = 2 => "Main Mode",
        AUTHENTICATION_ONLY = 3 => "Authentication Only",
        AGGRESSIVE = 4 => "Aggressive Mode",
        INFORMATIONAL = 5 => "Informational",
        TRANSACTION = 6 => "Transaction (Config Mode)",
        QUICK_MODE = 32 => "Quick Mode",
        NEW_GROUP_MODE = 33 => "New Group Mode",
    }
}

registry! {
    /// IKEv2 exchange types (IANA "IKEv2 Exchange Types").
    ExchangeV2(u8) {
        IKE_SA_INIT = 34,
        IKE_AUTH = 35,
        CREATE_CHILD_SA = 36,
        INFORMATIONAL = 37,
        IKE_SESSION_RESUME = 38,
        GSA_AUTH = 39,
        GSA_REGISTRATION = 40,
        GSA_REKEY = 41,
        IKE_INTERMEDIATE = 43,
        IKE_FOLLOWUP_KE = 44,
    }
}

registry! {
    /// IKEv1 payload types (RFC 2408 §3.1, ModeCfg, RFC 3947; 15/16 are GDOI's here,
    /// draft NAT-T readings of them are resolved by the parser's context).
    PayloadV1(u8) {
        SA = 1,
        P = 2,
        T = 3,
        KE = 4,
        ID = 5,
        CERT = 6,
        CR = 7,
        HASH = 8,
        SIG = 9,
        NONCE = 10,
        N = 11,
        D = 12,
        VID = 13,
        ATTR = 14,
        SAK = 15,
        SAT = 16,
        KD = 17,
        SEQ = 18,
        POP = 19,
        NAT_D = 20 => "NAT-D",
        NAT_OA = 21 => "NAT-OA",
        GAP = 22,
        NAT_D_DRAFT = 130 => "NAT-D (draft)",
        NAT_OA_DRAFT = 131 => "NAT-OA (draft)",
        CISCO_FRAGMENTATION = 132 => "FRAG (Cisco)",
    }
}

registry! {
    /// IKEv2 payload types (IANA "IKEv2 Payload Types").
    PayloadV2(u8) {
        SA = 33,
        KE = 34,
        IDI = 35 => "IDi",
        IDR = 36 => "IDr",
        CERT = 37,
        CERTREQ = 38,
        AUTH = 39,
        NONCE = 40 => "Nonce",
        N = 41,
        D = 42,
        V = 43,
        TSI = 44 => "TSi",
        TSR = 45 => "TSr",
        SK = 46,
        CP = 47,
        EAP = 48,
        GSPM = 49,
        IDG = 50 => "IDg",
        GSA = 51,
        KD = 52,
        SKF = 53,
        PS = 54,
    }
}

registry! {
    /// IKEv1 notify message types (RFC 2408 §3.14.1, RFC 2407 §4.6.3, RFC 3706 DPD).
    NotifyV1(u16) {
        INVALID_PAYLOAD_TYPE = 1 => "INVALID-PAYLOAD-TYPE",
        DOI_NOT_SUPPORTED = 2 => "DOI-NOT-SUPPORTED",
        SITUATION_NOT_SUPPORTED = 3 => "SITUATION-NOT-SUPPORTED",
        INVALID_COOKIE = 4 => "INVALID-COOKIE",
        INVALID_MAJOR_VERSION = 5 => "INVALID-MAJOR-VERSION",
        INVALID_MINOR_VERSION = 6 => "INVALID-MINOR-VERSION",
        INVALID_EXCHANGE_TYPE = 7 => "INVALID-EXCHANGE-TYPE",
        INVALID_FLAGS = 8 => "INVALID-FLAGS",
        INVALID_MESSAGE_ID = 9 => "INVALID-MESSAGE-ID",
        INVALID_PROTOCOL_ID = 10 => "INVALID-PROTOCOL-ID",
        INVALID_SPI = 11 => "INVALID-SPI",
        INVALID_TRANSFORM_ID = 12 => "INVALID-TRANSFORM-ID",
        ATTRIBUTES_NOT_SUPPORTED = 13 => "ATTRIBUTES-NOT-SUPPORTED",
        NO_PROPOSAL_CHOSEN = 14 => "NO-PROPOSAL-CHOSEN",
        BAD_PROPOSAL_SYNTAX = 15 => "BAD-PROPOSAL-SYNTAX",
        PAYLOAD_MALFORMED = 16 => "PAYLOAD-MALFORMED",
        INVALID_KEY_INFORMATION = 17 => "INVALID-KEY-INFORMATION",
        INVALID_ID_INFORMATION = 18 => "INVALID-ID-INFORMATION",
        INVALID_CERT_ENCODING = 19 => "INVALID-CERT-ENCODING",
        INVALID_CERTIFICATE = 20 => "INVALID-CERTIFICATE",
        CERT_TYPE_UNSUPPORTED = 21 => "CERT-TYPE-UNSUPPORTED",
        INVALID_CERT_AUTHORITY = 22 => "INVALID-CERT-AUTHORITY",
        INVALID_HASH_INFORMATION = 23 => "INVALID-HASH-INFORMATION",
        AUTHENTICATION_FAILED = 24 => "AUTHENTICATION-FAILED",
        INVALID_SIGNATURE = 25 => "INVALID-SIGNATURE",
        ADDRESS_NOTIFICATION = 26 => "ADDRESS-NOTIFICATION",
        NOTIFY_SA_LIFETIME = 27 => "NOTIFY-SA-LIFETIME",
        CERTIFICATE_UNAVAILABLE = 28 => "CERTIFICATE-UNAVAILABLE",
        UNSUPPORTED_EXCHANGE_TYPE = 29 => "UNSUPPORTED-EXCHANGE-TYPE",
        UNEQUAL_PAYLOAD_LENGTHS = 30 => "UNEQUAL-PAYLOAD-LENGTHS",
        CONNECTED = 16384 => "CONNECTED",
        RESPONDER_LIFETIME = 24576 => "RESPONDER-LIFETIME",
        REPLAY_STATUS = 24577 => "REPLAY-STATUS",
        INITIAL_CONTACT = 24578 => "INITIAL-CONTACT",
        R_U_THERE = 36136 => "R-U-THERE",
        R_U_THERE_ACK = 36137 => "R-U-THERE-ACK",
    }
}

registry! {
    /// IKEv2 notify message types (IANA "IKEv2 Notify Message Types").
    NotifyV2(u16) {
        UNSUPPORTED_CRITICAL_PAYLOAD = 1,
        INVALID_IKE_SPI = 4,
        INVALID_MAJOR_VERSION = 5,
        INVALID_SYNTAX = 7,
        INVALID_MESSAGE_ID = 9,
        INVALID_SPI = 11,
        NO_PROPOSAL_CHOSEN = 14,
        INVALID_KE_PAYLOAD = 17,
        AUTHENTICATION_FAILED = 24,
        SINGLE_PAIR_REQUIRED = 34,
        NO_ADDITIONAL_SAS = 35,
        INTERNAL_ADDRESS_FAILURE = 36,
        FAILED_CP_REQUIRED = 37,
        TS_UNACCEPTABLE = 38,
        INVALID_SELECTORS = 39,
        UNACCEPTABLE_ADDRESSES = 40,
        UNEXPECTED_NAT_DETECTED = 41,
        USE_ASSIGNED_HOA = 42 => "USE_ASSIGNED_HoA",
        TEMPORARY_FAILURE = 43,
        CHILD_SA_NOT_FOUND = 44,
        INVALID_GROUP_ID = 45,
        AUTHORIZATION_FAILED = 46,
        STATE_NOT_FOUND = 47,
        INITIAL_CONTACT = 16384,
        SET_WINDOW_SIZE = 16385,
        ADDITIONAL_TS_POSSIBLE = 16386,
        IPCOMP_SUPPORTED = 16387,
        NAT_DETECTION_SOURCE_IP = 16388,
        NAT_DETECTION_DESTINATION_IP = 16389,
        COOKIE = 16390,
        USE_TRANSPORT_MODE = 16391,
        HTTP_CERT_LOOKUP_SUPPORTED = 16392,
        REKEY_SA = 16393,
        ESP_TFC_PADDING_NOT_SUPPORTED = 16394,
        NON_FIRST_FRAGMENTS_ALSO = 16395,
        MOBIKE_SUPPORTED = 16396,
        ADDITIONAL_IP4_ADDRESS = 16397,
        ADDITIONAL_IP6_ADDRESS = 16398,
        NO_ADDITIONAL_ADDRESSES = 16399,
        UPDATE_SA_ADDRESSES = 16400,
        COOKIE2 = 16401,
        NO_NATS_ALLOWED = 16402,
        AUTH_LIFETIME = 16403,
        MULTIPLE_AUTH_SUPPORTED = 16404,
        ANOTHER_AUTH_FOLLOWS = 16405,
        REDIRECT_SUPPORTED = 16406,
        REDIRECT = 16407,
        REDIRECTED_FROM = 16408,
        TICKET_LT_OPAQUE = 16409,
        TICKET_REQUEST = 16410,
        TICKET_ACK = 16411,
        TICKET_NACK = 16412,
        TICKET_OPAQUE = 16413,
        LINK_ID = 16414,
        USE_WESP_MODE = 16415,
        ROHC_SUPPORTED = 16416,
        EAP_ONLY_AUTHENTICATION = 16417,
        CHILDLESS_IKEV2_SUPPORTED = 16418,
        QUICK_CRASH_DETECTION = 16419,
        IKEV2_MESSAGE_ID_SYNC_SUPPORTED = 16420,
        IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED = 16421,
        IKEV2_MESSAGE_ID_SYNC = 16422,
        IPSEC_REPLAY_COUNTER_SYNC = 16423,
        SECURE_PASSWORD_METHODS = 16424,
        PSK_PERSIST = 16425,
        PSK_CONFIRM = 16426,
        ERX_SUPPORTED = 16427,
        IFOM_CAPABILITY = 16428,
        SENDER_REQUEST_ID = 16429,
        IKEV2_FRAGMENTATION_SUPPORTED = 16430,
        SIGNATURE_HASH_ALGORITHMS = 16431,
        CLONE_IKE_SA_SUPPORTED = 16432,
        CLONE_IKE_SA = 16433,
        PUZZLE = 16434,
        USE_PPK = 16435,
        PPK_IDENTITY = 16436,
        NO_PPK_AUTH = 16437,
        INTERMEDIATE_EXCHANGE_SUPPORTED = 16438,
        IP4_ALLOWED = 16439,
        IP6_ALLOWED = 16440,
        ADDITIONAL_KEY_EXCHANGE = 16441,
        USE_AGGFRAG = 16442,
    }
}

registry! {
    /// IKEv2 transform types (IANA "Transform Type Values"; 6-12 from RFC 9370).
    TransformType(u8) {
        ENCR = 1,
        PRF = 2,
        INTEG = 3,
        KE = 4,
        ESN = 5,
        ADDKE1 = 6,
        ADDKE2 = 7,
        ADDKE3 = 8,
        ADDKE4 = 9,
        ADDKE5 = 10,
        ADDKE6 = 11,
        ADDKE7 = 12,
    }
}

registry! {
    /// IKEv2 transform type 1: encryption algorithms.
    Encr(u16) {
        ENCR_DES_IV64 = 1,
        ENCR_DES = 2,
        ENCR_3DES = 3,
        ENCR_RC5 = 4,
        ENCR_IDEA = 5,
        ENCR_CAST = 6,
        ENCR_BLOWFISH = 7,
        ENCR_3IDEA = 8,
        ENCR_DES_IV32 = 9,
        ENCR_NULL = 11,
        ENCR_AES_CBC = 12,
        ENCR_AES_CTR = 13,
        ENCR_AES_CCM_8 = 14,
        ENCR_AES_CCM_12 = 15,
        ENCR_AES_CCM_16 = 16,
        ENCR_AES_GCM_8 = 18,
        ENCR_AES_GCM_12 = 19,
        ENCR_AES_GCM_16 = 20,
        ENCR_NULL_AUTH_AES_GMAC = 21,
        ENCR_CAMELLIA_CBC = 23,
        ENCR_CAMELLIA_CTR = 24,
        ENCR_CAMELLIA_CCM_8 = 25,
        ENCR_CAMELLIA_CCM_12 = 26,
        ENCR_CAMELLIA_CCM_16 = 27,
        ENCR_CHACHA20_POLY1305 = 28,
        ENCR_AES_CCM_8_IIV = 29,
        ENCR_AES_GCM_16_IIV = 30,
        ENCR_CHACHA20_POLY1305_IIV = 31,
        ENCR_KUZNYECHIK_MGM_KTREE = 32,
        ENCR_MAGMA_MGM_KTREE = 33,
        ENCR_KUZNYECHIK_MGM_MAC_KTREE = 34,
        ENCR_MAGMA_MGM_MAC_KTREE = 35,
    }
}

registry! {
    /// IKEv2 transform type 2: pseudo-random functions.
    Prf(u16) {
        PRF_HMAC_MD5 = 1,
        PRF_HMAC_SHA1 = 2,
        PRF_HMAC_TIGER = 3,
        PRF_AES128_XCBC = 4,
        PRF_HMAC_SHA2_256 = 5,
        PRF_HMAC_SHA2_384 = 6,
        PRF_HMAC_SHA2_512 = 7,
        PRF_AES128_CMAC = 8,
        PRF_HMAC_STREEBOG_512 = 9,
    }
}

registry! {
    /// IKEv2 transform type 3: integrity algorithms.
    Integ(u16) {
        NONE = 0,
        AUTH_HMAC_MD5_96 = 1,
        AUTH_HMAC_SHA1_96 = 2,
        AUTH_DES_MAC = 3,
        AUTH_KPDK_MD5 = 4,
        AUTH_AES_XCBC_96 = 5,
        AUTH_HMAC_MD5_128 = 6,
        AUTH_HMAC_SHA1_160 = 7,
        AUTH_AES_CMAC_96 = 8,
        AUTH_AES_128_GMAC = 9,
        AUTH_AES_192_GMAC = 10,
        AUTH_AES_256_GMAC = 11,
        AUTH_HMAC_SHA2_256_128 = 12,
        AUTH_HMAC_SHA2_384_192 = 13,
        AUTH_HMAC_SHA2_512_256 = 14,
    }
}

registry! {
    /// Diffie-Hellman / key exchange groups, shared by IKEv2 transform type 4 and the
    /// IKEv1 Group Description attribute (values 3 and 4 are IKEv1's EC2N groups).
    DhGroup(u16) {
        NONE = 0,
        MODP_768 = 1 => "MODP_768",
        MODP_1024 = 2 => "MODP_1024",
        EC2N_155 = 3 => "EC2N_155",
        EC2N_185 = 4 => "EC2N_185",
        MODP_1536 = 5 => "MODP_1536",
        MODP_2048 = 14 => "MODP_2048",
        MODP_3072 = 15 => "MODP_3072",
        MODP_4096 = 16 => "MODP_4096",
        MODP_6144 = 17 => "MODP_6144",
        MODP_8192 = 18 => "MODP_8192",
        ECP_256 = 19 => "ECP_256",
        ECP_384 = 20 => "ECP_384",
        ECP_521 = 21 => "ECP_521",
        MODP_1024_S160 = 22 => "MODP_1024_160",
        MODP_2048_S224 = 23 => "MODP_2048_224",
        MODP_2048_S256 = 24 => "MODP_2048_256",
        ECP_192 = 25 => "ECP_192",
        ECP_224 = 26 => "ECP_224",
        BRAINPOOL_P224R1 = 27 => "BRAINPOOL_P224R1",
        BRAINPOOL_P256R1 = 28 => "BRAINPOOL_P256R1",
        BRAINPOOL_P384R1 = 29 => "BRAINPOOL_P384R1",
        BRAINPOOL_P512R1 = 30 => "BRAINPOOL_P512R1",
        CURVE25519 = 31 => "CURVE25519",
        CURVE448 = 32 => "CURVE448",
        GOST3410_2012_256 = 33,
        GOST3410_2012_512 = 34,
        ML_KEM_512 = 35 => "ML_KEM_512",
        ML_KEM_768 = 36 => "ML_KEM_768",
        ML_KEM_1024 = 37 => "ML_KEM_1024",
    }
}

registry! {
    /// IKEv2 transform type 5: extended sequence numbers.
    Esn(u16) {
        NO_ESN = 0 => "No ESN",
        ESN = 1 => "ESN",
    }
}

registry! {
    /// Protocol IDs of proposals, notifies and deletes (IKEv1 RFC 2407 §4.4.1, IKEv2
    /// RFC 7296 §3.3.1 share 1-3).
    ProtocolId(u8) {
        ISAKMP = 1 => "IKE",
        AH = 2,
        ESP = 3,
        IPCOMP = 4,
        FC_ESP_HEADER = 5,
        FC_CT_AUTHENTICATION = 6,
    }
}

registry! {
    /// IKEv1 ISAKMP transform IDs (RFC 2407 §4.4.2).
    IsakmpTransform(u16) {
        KEY_IKE = 1,
    }
}

registry! {
    /// IKEv1 AH transform IDs (RFC 2407 §4.4.3 and IANA).
    AhTransform(u16) {
        AH_MD5 = 2,
        AH_SHA = 3,
        AH_DES = 4,
        AH_SHA2_256 = 5 => "AH_SHA2-256",
        AH_SHA2_384 = 6 => "AH_SHA2-384",
        AH_SHA2_512 = 7 => "AH_SHA2-512",
        AH_RIPEMD = 8,
        AH_AES_XCBC_MAC = 9 => "AH_AES-XCBC-MAC",
        AH_RSA = 10,
        AH_AES_128_GMAC = 11 => "AH_AES-128-GMAC",
        AH_AES_192_GMAC = 12 => "AH_AES-192-GMAC",
        AH_AES_256_GMAC = 13 => "AH_AES-256-GMAC",
    }
}

registry! {
    /// IKEv1 ESP transform IDs (RFC 2407 §4.4.4 and IANA).
    EspTransform(u16) {
        ESP_DES_IV64 = 1,
        ESP_DES = 2,
        ESP_3DES = 3,
        ESP_RC5 = 4,
        ESP_IDEA = 5,
        ESP_CAST = 6,
        ESP_BLOWFISH = 7,
        ESP_3IDEA = 8,
        ESP_DES_IV32 = 9,
        ESP_RC4 = 10,
        ESP_NULL = 11,
        ESP_AES = 12 => "ESP_AES-CBC",
        ESP_AES_CTR = 13 => "ESP_AES-CTR",
        ESP_AES_CCM_8 = 14 => "ESP_AES-CCM_8",
        ESP_AES_CCM_12 = 15 => "ESP_AES-CCM_12",
        ESP_AES_CCM_16 = 16 => "ESP_AES-CCM_16",
        ESP_AES_GCM_8 = 18 => "ESP_AES-GCM_8",
        ESP_AES_GCM_12 = 19 => "ESP_AES-GCM_12",
        ESP_AES_GCM_16 = 20 => "ESP_AES-GCM_16",
        ESP_SEED_CBC = 21,
        ESP_CAMELLIA = 22,
        ESP_NULL_AUTH_AES_GMAC = 23 => "ESP_NULL_AUTH_AES-GMAC",
    }
}

registry! {
    /// IKEv1 IPCOMP transform IDs (RFC 2407 §4.4.5).
    IpcompTransform(u16) {
        IPCOMP_OUI = 1,
        IPCOMP_DEFLATE = 2,
        IPCOMP_LZS = 3,
        IPCOMP_LZJH = 4,
    }
}

registry! {
    /// IKEv1 phase-1 (Oakley) attribute classes (RFC 2409 Appendix A).
    OakleyAttr(u16) {
        ENCRYPTION_ALGORITHM = 1 => "Encryption-Algorithm",
        HASH_ALGORITHM = 2 => "Hash-Algorithm",
        AUTHENTICATION_METHOD = 3 => "Authentication-Method",
        GROUP_DESCRIPTION = 4 => "Group-Description",
        GROUP_TYPE = 5 => "Group-Type",
        GROUP_PRIME = 6 => "Group-Prime/Irreducible-Polynomial",
        GROUP_GENERATOR_ONE = 7 => "Group-Generator-One",
        GROUP_GENERATOR_TWO = 8 => "Group-Generator-Two",
        GROUP_CURVE_A = 9 => "Group-Curve-A",
        GROUP_CURVE_B = 10 => "Group-Curve-B",
        LIFE_TYPE = 11 => "Life-Type",
        LIFE_DURATION = 12 => "Life-Duration",
        PRF = 13 => "PRF",
        KEY_LENGTH = 14 => "Key-Length",
        FIELD_SIZE = 15 => "Field-Size",
        GROUP_ORDER = 16 => "Group-Order",
    }
}

registry! {
    /// IKEv1 Encryption-Algorithm values (RFC 2409 Appendix A, RFC 3602, RFC 4312).
    OakleyEncr(u16) {
        DES_CBC = 1 => "DES-CBC",
        IDEA_CBC = 2 => "IDEA-CBC",
        BLOWFISH_CBC = 3 => "Blowfish-CBC",
        RC5_R16_B64_CBC = 4 => "RC5-R16-B64-CBC",
        TRIPLE_DES_CBC = 5 => "3DES-CBC",
        CAST_CBC = 6 => "CAST-CBC",
        AES_CBC = 7 => "AES-CBC",
        CAMELLIA_CBC = 8 => "CAMELLIA-CBC",
    }
}

registry! {
    /// IKEv1 Hash-Algorithm values (RFC 2409 Appendix A, RFC 4868).
    OakleyHash(u16) {
        MD5 = 1,
        SHA = 2,
        TIGER = 3 => "Tiger",
        SHA2_256 = 4 => "SHA2-256",
        SHA2_384 = 5 => "SHA2-384",
        SHA2_512 = 6 => "SHA2-512",
    }
}

registry! {
    /// IKEv1 Authentication-Method values: RFC 2409 Appendix A, RFC 4754 (ECDSA), the
    /// hybrid and XAUTH private values (draft-ietf-ipsec-isakmp-hybrid-auth,
    /// draft-beaulieu-ike-xauth), and the GSS-API values of draft-ietf-ipsec-isakmp-gss-auth.
    OakleyAuth(u16) {
        PRE_SHARED_KEY = 1 => "Pre-shared key",
        DSS_SIGNATURES = 2 => "DSS signatures",
        RSA_SIGNATURES = 3 => "RSA signatures",
        RSA_ENCRYPTION = 4 => "Encryption with RSA",
        RSA_REVISED_ENCRYPTION = 5 => "Revised encryption with RSA",
        ELGAMAL_ENCRYPTION = 6 => "Encryption with El-Gamal",
        ELGAMAL_REVISED_ENCRYPTION = 7 => "Revised encryption with El-Gamal",
        ECDSA_SIGNATURES = 8 => "ECDSA signatures",
        ECDSA_SHA256_P256 = 9 => "ECDSA with SHA-256 on the P-256 curve",
        ECDSA_SHA384_P384 = 10 => "ECDSA with SHA-384 on the P-384 curve",
        ECDSA_SHA512_P521 = 11 => "ECDSA with SHA-512 on the P-521 curve",
        HYBRID_INIT_RSA = 64221 => "HybridInitRSA",
        HYBRID_RESP_RSA = 64222 => "HybridRespRSA",
        HYBRID_INIT_DSS = 64223 => "HybridInitDSS",
        HYBRID_RESP_DSS = 64224 => "HybridRespDSS",
        XAUTH_INIT_PRE_SHARED = 65001 => "XAUTHInitPreShared",
        XAUTH_RESP_PRE_SHARED = 65002 => "XAUTHRespPreShared",
        XAUTH_INIT_DSS = 65003 => "XAUTHInitDSS",
        XAUTH_RESP_DSS = 65004 => "XAUTHRespDSS",
        XAUTH_INIT_RSA = 65005 => "XAUTHInitRSA",
        XAUTH_RESP_RSA = 65006 => "XAUTHRespRSA",
        XAUTH_INIT_RSA_ENCRYPTION = 65007 => "XAUTHInitRSAEncryption",
        XAUTH_RESP_RSA_ENCRYPTION = 65008 => "XAUTHRespRSAEncryption",
        XAUTH_INIT_RSA_REVISED_ENCRYPTION = 65009 => "XAUTHInitRSARevisedEncryption",
        XAUTH_RESP_RSA_REVISED_ENCRYPTION = 65010 => "XAUTHRespRSARevisedEncryption",
    }
}

/// The private authentication-method value that the GSS-API method of
/// draft-ietf-ipsec-isakmp-gss-auth (Kerberos in Windows 2000) uses. XAUTH's
/// `XAUTHInitPreShared` uses the same value; the attribute alone cannot tell them apart,
/// so both readings are named.
pub const GSS_API_KERBEROS: u16 = 65001;

/// Name of an IKEv1 authentication method value, mentioning both readings of 65001.
pub fn oakley_auth_name(value: u16) -> Option<&'static str> {
    if value == GSS_API_KERBEROS {
        return Some("XAUTHInitPreShared or GSS-API (Kerberos)");
    }
    OakleyAuth(value).name()
}

registry! {
    /// IKEv1 Group-Type values (RFC 2409 Appendix A).
    OakleyGroupType(u16) {
        MODP = 1,
        ECP = 2,
        EC2N = 3,
    }
}

registry! {
    /// IKEv1 Life-Type values (phase 1, RFC 2409) and SA Life Type values (IPsec DOI).
    LifeType(u16) {
        SECONDS = 1 => "Seconds",
        KILOBYTES = 2 => "Kilobytes",
    }
}

registry! {
    /// IKEv1 IPsec DOI SA attributes (RFC 2407 §4.5 and IANA).
    IpsecAttr(u16) {
        SA_LIFE_TYPE = 1 => "SA-Life-Type",
        SA_LIFE_DURATION = 2 => "SA-Life-Duration",
        GROUP_DESCRIPTION = 3 => "Group-Description",
        ENCAPSULATION_MODE = 4 => "Encapsulation-Mode",
        AUTHENTICATION_ALGORITHM = 5 => "Authentication-Algorithm",
        KEY_LENGTH = 6 => "Key-Length",
        KEY_ROUNDS = 7 => "Key-Rounds",
        COMPRESS_DICTIONARY_SIZE = 8 => "Compress-Dictionary-Size",
        COMPRESS_PRIVATE_ALGORITHM = 9 => "Compress-Private-Algorithm",
        ECN_TUNNEL = 10 => "ECN-Tunnel",
        EXTENDED_SEQUENCE_NUMBER = 11 => "Extended-Sequence-Number",
        AUTHENTICATION_KEY_LENGTH = 12 => "Authentication-Key-Length",
        SIGNATURE_ENCODING = 13 => "Signature-Encoding",
        ADDRESS_PRESERVATION = 14 => "Address-Preservation",
        SA_DIRECTION = 15 => "SA-Direction",
    }
}

registry! {
    /// IKEv1 Encapsulation-Mode values: RFC 2407, RFC 3947 (3, 4) and the NAT-T drafts'
    /// private values (61443, 61444).
    EncapsulationMode(u16) {
        TUNNEL = 1 => "Tunnel",
        TRANSPORT = 2 => "Transport",
        UDP_ENCAPSULATED_TUNNEL = 3 => "UDP-Encapsulated-Tunnel",
        UDP_ENCAPSULATED_TRANSPORT = 4 => "UDP-Encapsulated-Transport",
        UDP_ENCAPSULATED_TUNNEL_DRAFT = 61443 => "UDP-Encapsulated-Tunnel (draft)",
        UDP_ENCAPSULATED_TRANSPORT_DRAFT = 61444 => "UDP-Encapsulated-Transport (draft)",
    }
}

registry! {
    /// IKEv1 IPsec DOI Authentication-Algorithm values (RFC 2407 §4.5 and IANA).
    IpsecAuthAlg(u16) {
        HMAC_MD5 = 1 => "HMAC-MD5",
        HMAC_SHA = 2 => "HMAC-SHA",
        DES_MAC = 3 => "DES-MAC",
        KPDK = 4 => "KPDK",
        HMAC_SHA2_256 = 5 => "HMAC-SHA2-256",
        HMAC_SHA2_384 = 6 => "HMAC-SHA2-384",
        HMAC_SHA2_512 = 7 => "HMAC-SHA2-512",
        HMAC_RIPEMD = 8 => "HMAC-RIPEMD",
        AES_XCBC_MAC = 9 => "AES-XCBC-MAC",
        SIG_RSA = 10 => "SIG-RSA",
        AES_128_GMAC = 11 => "AES-128-GMAC",
        AES_192_GMAC = 12 => "AES-192-GMAC",
        AES_256_GMAC = 13 => "AES-256-GMAC",
    }
}

registry! {
    /// Identification types (IKEv1 IPsec DOI RFC 2407 §4.6.2.1; IKEv2 RFC 7296 §3.5 uses
    /// the same numbers for the types it kept, plus 12 FC_NAME and 13 NULL).
    IdType(u8) {
        ID_IPV4_ADDR = 1,
        ID_FQDN = 2,
        ID_USER_FQDN = 3,
        ID_IPV4_ADDR_SUBNET = 4,
        ID_IPV6_ADDR = 5,
        ID_IPV6_ADDR_SUBNET = 6,
        ID_IPV4_ADDR_RANGE = 7,
        ID_IPV6_ADDR_RANGE = 8,
        ID_DER_ASN1_DN = 9,
        ID_DER_ASN1_GN = 10,
        ID_KEY_ID = 11,
        ID_FC_NAME = 12,
        ID_NULL = 13,
    }
}

registry! {
    /// Certificate encodings (RFC 2408 §3.9, RFC 7296 §3.6, RFC 7670).
    CertEncoding(u8) {
        PKCS7_WRAPPED_X509 = 1 => "PKCS #7 wrapped X.509 certificate",
        PGP = 2 => "PGP Certificate",
        DNS_SIGNED_KEY = 3 => "DNS Signed Key",
        X509_SIGNATURE = 4 => "X.509 Certificate - Signature",
        X509_KEY_EXCHANGE = 5 => "X.509 Certificate - Key Exchange",
        KERBEROS_TOKENS = 6 => "Kerberos Tokens",
        CRL = 7 => "Certificate Revocation List (CRL)",
        ARL = 8 => "Authority Revocation List (ARL)",
        SPKI = 9 => "SPKI Certificate",
        X509_ATTRIBUTE = 10 => "X.509 Certificate - Attribute",
        RAW_RSA_KEY = 11 => "Raw RSA Key",
        HASH_URL_X509_CERT = 12 => "Hash and URL of X.509 certificate",
        HASH_URL_X509_BUNDLE = 13 => "Hash and URL of X.509 bundle",
        OCSP_CONTENT = 14 => "OCSP Content",
        RAW_PUBLIC_KEY = 15 => "Raw Public Key",
    }
}

registry! {
    /// IKEv2 authentication methods (IANA "IKEv2 Authentication Method").
    AuthMethod(u8) {
        RSA_DIGITAL_SIGNATURE = 1 => "RSA Digital Signature",
        SHARED_KEY_MIC = 2 => "Shared Key Message Integrity Code",
        DSS_DIGITAL_SIGNATURE = 3 => "DSS Digital Signature",
        ECDSA_SHA256_P256 = 9 => "ECDSA with SHA-256 on the P-256 curve",
        ECDSA_SHA384_P384 = 10 => "ECDSA with SHA-384 on the P-384 curve",
        ECDSA_SHA512_P521 = 11 => "ECDSA with SHA-512 on the P-521 curve",
        GENERIC_SECURE_PASSWORD = 12 => "Generic Secure Password Authentication Method",
        NULL_AUTHENTICATION = 13 => "NULL Authentication",
        DIGITAL_SIGNATURE = 14 => "Digital Signature",
    }
}

registry! {
    /// Configuration payload types (IKEv2 CP RFC 7296 §3.15; IKEv1 ModeCfg ATTR uses the
    /// same numbers with ISAKMP_CFG_ names).
    CfgType(u8) {
        CFG_REQUEST = 1,
        CFG_REPLY = 2,
        CFG_SET = 3,
        CFG_ACK = 4,
    }
}

registry! {
    /// Configuration attribute types: IKEv2 (RFC 7296 §3.15.1 and IANA), IKEv1 ModeCfg
    /// (draft-dukes-ike-mode-cfg), XAUTH (draft-beaulieu-ike-xauth) and Cisco Unity.
    CfgAttr(u16) {
        INTERNAL_IP4_ADDRESS = 1,
        INTERNAL_IP4_NETMASK = 2,
        INTERNAL_IP4_DNS = 3,
        INTERNAL_IP4_NBNS = 4,
        INTERNAL_ADDRESS_EXPIRY = 5,
        INTERNAL_IP4_DHCP = 6,
        APPLICATION_VERSION = 7,
        INTERNAL_IP6_ADDRESS = 8,
        INTERNAL_IP6_NETMASK = 9,
        INTERNAL_IP6_DNS = 10,
        INTERNAL_IP6_NBNS = 11,
        INTERNAL_IP6_DHCP = 12,
        INTERNAL_IP4_SUBNET = 13,
        SUPPORTED_ATTRIBUTES = 14,
        INTERNAL_IP6_SUBNET = 15,
        MIP6_HOME_PREFIX = 16,
        INTERNAL_IP6_LINK = 17,
        INTERNAL_IP6_PREFIX = 18,
        HOME_AGENT_ADDRESS = 19,
        P_CSCF_IP4_ADDRESS = 20,
        P_CSCF_IP6_ADDRESS = 21,
        FTT_KAT = 22,
        EXTERNAL_SOURCE_IP4_NAT_INFO = 23,
        TIMEOUT_PERIOD_FOR_LIVENESS_CHECK = 24,
        INTERNAL_DNS_DOMAIN = 25,
        INTERNAL_DNSSEC_TA = 26,
        XAUTH_TYPE = 16520 => "XAUTH-TYPE",
        XAUTH_USER_NAME = 16521 => "XAUTH-USER-NAME",
        XAUTH_USER_PASSWORD = 16522 => "XAUTH-USER-PASSWORD",
        XAUTH_PASSCODE = 16523 => "XAUTH-PASSCODE",
        XAUTH_MESSAGE = 16524 => "XAUTH-MESSAGE",
        XAUTH_CHALLENGE = 16525 => "XAUTH-CHALLENGE",
        XAUTH_DOMAIN = 16526 => "XAUTH-DOMAIN",
        XAUTH_STATUS = 16527 => "XAUTH-STATUS",
        XAUTH_NEXT_PIN = 16528 => "XAUTH-NEXT-PIN",
        XAUTH_ANSWER = 16529 => "XAUTH-ANSWER",
        UNITY_BANNER = 28672,
        UNITY_SAVE_PASSWD = 28673,
        UNITY_DEF_DOMAIN = 28674,
        UNITY_SPLIT_DNS_NAME = 28675,
        UNITY_SPLIT_INCLUDE = 28676,
        UNITY_NATT_PORT = 28677,
        UNITY_LOCAL_LAN = 28678,
        UNITY_PFS = 28679,
        UNITY_FW_TYPE = 28680,
        UNITY_BACKUP_SERVERS = 28681,
        UNITY_DDNS_HOSTNAME = 28682,
    }
}

registry! {
    /// IKEv2 traffic selector types (RFC 7296 §3.13.1).
    TsType(u8) {
        TS_IPV4_ADDR_RANGE = 7,
        TS_IPV6_ADDR_RANGE = 8,
        TS_FC_ADDR_RANGE = 9,
        TS_SECLABEL = 10,
    }
}

registry! {
    /// EAP codes (RFC 3748 §4).
    EapCode(u8) {
        REQUEST = 1 => "Request",
        RESPONSE = 2 => "Response",
        SUCCESS = 3 => "Success",
        FAILURE = 4 => "Failure",
    }
}

/// Name of an exchange type in the numbering of `major`.
pub fn exchange_name(major: u8, exchange: u8) -> Option<&'static str> {
    match major {
        1 => ExchangeV1(exchange).name(),
        _ => ExchangeV2(exchange).name(),
    }
}

/// Name of a payload type in the numbering of `major`; `draft_natd` reads IKEv1 15/16 as
/// the NAT-T drafts' NAT-D / NAT-OA.
pub fn payload_name(major: u8, payload: u8, draft_natd: bool) -> Option<&'static str> {
    match (major, payload) {
        (1, 15) if draft_natd => Some("NAT-D (draft)"),
        (1, 16) if draft_natd => Some("NAT-OA (draft)"),
        (1, p) => PayloadV1(p).name(),
        (_, p) => PayloadV2(p).name(),
    }
}

/// Name of a notify type in the numbering of `major`.
pub fn notify_name(major: u8, notify: u16) -> Option<&'static str> {
    match major {
        1 => NotifyV1(notify).name(),
        _ => NotifyV2(notify).name(),
    }
}

/// Name of an IKEv2 transform ID within its transform type.
pub fn transform_id_name_v2(transform_type: u8, id: u16) -> Option<&'static str> {
    match transform_type {
        1 => Encr(id).name(),
        2 => Prf(id).name(),
        3 => Integ(id).name(),
        4 | 6..=12 => DhGroup(id).name(),
        5 => Esn(id).name(),
        _ => None,
    }
}

/// Name of an IKEv1 transform ID within the proposal's protocol.
pub fn transform_id_name_v1(protocol_id: u8, id: u16) -> Option<&'static str> {
    match protocol_id {
        1 => IsakmpTransform(id).name(),
        2 => AhTransform(id).name(),
        3 => EspTransform(id).name(),
        4 => IpcompTransform(id).name(),
        _ => None,
    }
}

/// Name of an IKEv1 SA attribute type: Oakley classes for ISAKMP proposals, IPsec DOI
/// attributes for AH/ESP/IPCOMP proposals.
pub fn attribute_name_v1(protocol_id: u8, attr_type: u16) -> Option<&'static str> {
    if protocol_id == 1 {
        OakleyAttr(attr_type).name()
    } else {
        IpsecAttr(attr_type).name()
    }
}

/// Name of an IKEv1 SA attribute's value, for the attribute classes whose values are
/// enumerations (durations, lengths and group parameters are numbers, not names).
pub fn attribute_value_name_v1(
    protocol_id: u8,
    attr_type: u16,
    value: u64,
) -> Option<&'static str> {
    let v = u16::try_from(value).ok()?;
    if protocol_id == 1 {
        match attr_type {
            1 => OakleyEncr(v).name(),
            2 | 13 => OakleyHash(v).name(),
            3 => oakley_auth_name(v),
            4 => DhGroup(v).name(),
            5 => OakleyGroupType(v).name(),
            11 => LifeType(v).name(),
            _ => None,
        }
    } else {
        match attr_type {
            1 => LifeType(v).name(),
            3 => DhGroup(v).name(),
            4 => EncapsulationMode(v).name(),
            5 => IpsecAuthAlg(v).name(),
            _ => None,
        }
    }
}

/// Name of an IKEv2 transform attribute type (only Key Length, 14, is defined).
pub fn attribute_name_v2(attr_type: u16) -> Option<&'static str> {
    (attr_type == 14).then_some("Key Length")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_have_names_and_unknown_do_not() {
        assert_eq!(NotifyV2::NAT_DETECTION_SOURCE_IP.0, 16388);
        assert_eq!(NotifyV2(16388).name(), Some("NAT_DETECTION_SOURCE_IP"));
        assert_eq!(NotifyV2(60000).name(), None);
        assert_eq!(NotifyV1(24578).name(), Some("INITIAL-CONTACT"));
        assert_eq!(ExchangeV2(43).name(), Some("IKE_INTERMEDIATE"));
        assert_eq!(exchange_name(1, 32), Some("Quick Mode"));
        assert_eq!(exchange_name(1, 34), None);
        assert_eq!(PayloadV2(53).name(), Some("SKF"));
    }

    #[test]
    fn payload_15_depends_on_the_nat_t_draft() {
        assert_eq!(payload_name(1, 15, false), Some("SAK"));
        assert_eq!(payload_name(1, 15, true), Some("NAT-D (draft)"));
        assert_eq!(payload_name(2, 15, true), None);
    }

    #[test]
    fn ikev1_attribute_values_follow_the_protocol() {
        assert_eq!(attribute_value_name_v1(1, 1, 7), Some("AES-CBC"));
        assert_eq!(
            attribute_value_name_v1(3, 4, 61443),
            Some("UDP-Encapsulated-Tunnel (draft)")
        );
        assert_eq!(attribute_value_name_v1(3, 5, 2), Some("HMAC-SHA"));
        assert_eq!(attribute_value_name_v1(1, 12, 86400), None);
        assert_eq!(attribute_value_name_v1(1, 1, 1 << 40), None);
        assert!(attribute_value_name_v1(1, 3, 65001)
            .unwrap()
            .contains("Kerberos"));
    }

    #[test]
    fn transform_ids_by_type() {
        assert_eq!(transform_id_name_v2(1, 12), Some("ENCR_AES_CBC"));
        assert_eq!(transform_id_name_v2(3, 12), Some("AUTH_HMAC_SHA2_256_128"));
        assert_eq!(transform_id_name_v2(4, 31), Some("CURVE25519"));
        assert_eq!(transform_id_name_v2(99, 1), None);
        assert_eq!(transform_id_name_v1(3, 12), Some("ESP_AES-CBC"));
        assert_eq!(transform_id_name_v1(1, 1), Some("KEY_IKE"));
    }
}
