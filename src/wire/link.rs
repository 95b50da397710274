//! Link-layer headers: Ethernet (802.1Q / QinQ), Linux cooked v1/v2, BSD loopback, raw IP.
