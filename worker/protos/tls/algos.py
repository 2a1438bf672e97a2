"""Names of TLS code points (IANA TLS parameters registry), as Packetbeat 8
prints them (``packetbeat/protos/tls/algos.go``, ``alerts.go``): a code point
without a name prints as ``(unknown:0x....)``.

The tables are plain dicts built once at import; the few code points Packetbeat's
tables lack but today's stacks send (the TLS 1.3 suites, ``x25519``'s hybrid
post-quantum groups, brainpool TLS 1.3 groups, Ed25519/Ed448 and RSA-PSS-PSS
signature schemes) are added with their IANA names.
"""
from __future__ import annotations


def _suites() -> dict[int, str]:
    t: dict[int, str] = {}
    seq = [
        "TLS_NULL_WITH_NULL_NULL", "TLS_RSA_WITH_NULL_MD5", "TLS_RSA_WITH_NULL_SHA",
        "TLS_RSA_EXPORT_WITH_RC4_40_MD5", "TLS_RSA_WITH_RC4_128_MD5", "TLS_RSA_WITH_RC4_128_SHA",
        "TLS_RSA_EXPORT_WITH_RC2_CBC_40_MD5", "TLS_RSA_WITH_IDEA_CBC_SHA", "TLS_RSA_EXPORT_WITH_DES40_CBC_SHA",
        "TLS_RSA_WITH_DES_CBC_SHA", "TLS_RSA_WITH_3DES_EDE_CBC_SHA", "TLS_DH_DSS_EXPORT_WITH_DES40_CBC_SHA",
        "TLS_DH_DSS_WITH_DES_CBC_SHA", "TLS_DH_DSS_WITH_3DES_EDE_CBC_SHA", "TLS_DH_RSA_EXPORT_WITH_DES40_CBC_SHA",
        "TLS_DH_RSA_WITH_DES_CBC_SHA", "TLS_DH_RSA_WITH_3DES_EDE_CBC_SHA", "TLS_DHE_DSS_EXPORT_WITH_DES40_CBC_SHA",
        "TLS_DHE_DSS_WITH_DES_CBC_SHA", "TLS_DHE_DSS_WITH_3DES_EDE_CBC_SHA", "TLS_DHE_RSA_EXPORT_WITH_DES40_CBC_SHA",
        "TLS_DHE_RSA_WITH_DES_CBC_SHA", "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA", "TLS_DH_anon_EXPORT_WITH_RC4_40_MD5",
        "TLS_DH_anon_WITH_RC4_128_MD5", "TLS_DH_anon_EXPORT_WITH_DES40_CBC_SHA", "TLS_DH_anon_WITH_DES_CBC_SHA",
        "TLS_DH_anon_WITH_3DES_EDE_CBC_SHA", "SSL_FORTEZZA_KEA_WITH_NULL_SHA", "SSL_FORTEZZA_KEA_WITH_FORTEZZA_CBC_SHA",
        "TLS_KRB5_WITH_DES_CBC_SHA", "TLS_KRB5_WITH_3DES_EDE_CBC_SHA", "TLS_KRB5_WITH_RC4_128_SHA",
        "TLS_KRB5_WITH_IDEA_CBC_SHA", "TLS_KRB5_WITH_DES_CBC_MD5", "TLS_KRB5_WITH_3DES_EDE_CBC_MD5",
        "TLS_KRB5_WITH_RC4_128_MD5", "TLS_KRB5_WITH_IDEA_CBC_MD5", "TLS_KRB5_EXPORT_WITH_DES_CBC_40_SHA",
        "TLS_KRB5_EXPORT_WITH_RC2_CBC_40_SHA", "TLS_KRB5_EXPORT_WITH_RC4_40_SHA", "TLS_KRB5_EXPORT_WITH_DES_CBC_40_MD5",
        "TLS_KRB5_EXPORT_WITH_RC2_CBC_40_MD5", "TLS_KRB5_EXPORT_WITH_RC4_40_MD5", "TLS_PSK_WITH_NULL_SHA",
        "TLS_DHE_PSK_WITH_NULL_SHA", "TLS_RSA_PSK_WITH_NULL_SHA", "TLS_RSA_WITH_AES_128_CBC_SHA",
        "TLS_DH_DSS_WITH_AES_128_CBC_SHA", "TLS_DH_RSA_WITH_AES_128_CBC_SHA", "TLS_DHE_DSS_WITH_AES_128_CBC_SHA",
        "TLS_DHE_RSA_WITH_AES_128_CBC_SHA", "TLS_DH_anon_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_AES_256_CBC_SHA",
        "TLS_DH_DSS_WITH_AES_256_CBC_SHA", "TLS_DH_RSA_WITH_AES_256_CBC_SHA", "TLS_DHE_DSS_WITH_AES_256_CBC_SHA",
        "TLS_DHE_RSA_WITH_AES_256_CBC_SHA", "TLS_DH_anon_WITH_AES_256_CBC_SHA", "TLS_RSA_WITH_NULL_SHA256",
        "TLS_RSA_WITH_AES_128_CBC_SHA256", "TLS_RSA_WITH_AES_256_CBC_SHA256", "TLS_DH_DSS_WITH_AES_128_CBC_SHA256",
        "TLS_DH_RSA_WITH_AES_128_CBC_SHA256", "TLS_DHE_DSS_WITH_AES_128_CBC_SHA256",
        "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA", "TLS_DH_DSS_WITH_CAMELLIA_128_CBC_SHA",
        "TLS_DH_RSA_WITH_CAMELLIA_128_CBC_SHA", "TLS_DHE_DSS_WITH_CAMELLIA_128_CBC_SHA",
        "TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA", "TLS_DH_anon_WITH_CAMELLIA_128_CBC_SHA",
        "TLS_ECDH_ECDSA_WITH_NULL_SHA", "TLS_ECDH_ECDSA_WITH_RC4_128_SHA", "TLS_ECDH_ECDSA_WITH_DES_CBC_SHA",
        "TLS_ECDH_ECDSA_WITH_3DES_EDE_CBC_SHA", "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA",
        "TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA",
    ]
    for i, n in enumerate(seq):
        t[i] = n
    for code, n in [
        (0x60, "TLS_RSA_EXPORT1024_WITH_RC4_56_MD5"), (0x61, "TLS_RSA_EXPORT1024_WITH_RC2_CBC_56_MD5"),
        (0x62, "TLS_RSA_EXPORT1024_WITH_DES_CBC_SHA"), (0x63, "TLS_DHE_DSS_EXPORT1024_WITH_DES_CBC_SHA"),
        (0x64, "TLS_RSA_EXPORT1024_WITH_RC4_56_SHA"), (0x65, "TLS_DHE_DSS_EXPORT1024_WITH_RC4_56_SHA"),
        (0x66, "TLS_DHE_DSS_WITH_RC4_128_SHA"), (0x67, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256"),
        (0x68, "TLS_DH_DSS_WITH_AES_256_CBC_SHA256"), (0x69, "TLS_DH_RSA_WITH_AES_256_CBC_SHA256"),
        (0x6A, "TLS_DHE_DSS_WITH_AES_256_CBC_SHA256"), (0x6B, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256"),
        (0x6C, "TLS_DH_anon_WITH_AES_128_CBC_SHA256"), (0x6D, "TLS_DH_anon_WITH_AES_256_CBC_SHA256"),
        (0x80, "TLS_GOSTR341094_WITH_28147_CNT_IMIT"), (0x81, "TLS_GOSTR341001_WITH_28147_CNT_IMIT"),
        (0x82, "TLS_GOSTR341094_WITH_NULL_GOSTR3411"), (0x83, "TLS_GOSTR341001_WITH_NULL_GOSTR3411"),
        (0x84, "TLS_RSA_WITH_CAMELLIA_256_CBC_SHA"), (0x85, "TLS_DH_DSS_WITH_CAMELLIA_256_CBC_SHA"),
        (0x86, "TLS_DH_RSA_WITH_CAMELLIA_256_CBC_SHA"), (0x87, "TLS_DHE_DSS_WITH_CAMELLIA_256_CBC_SHA"),
        (0x88, "TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA"), (0x89, "TLS_DH_anon_WITH_CAMELLIA_256_CBC_SHA"),
        (0x8A, "TLS_PSK_WITH_RC4_128_SHA"), (0x8B, "TLS_PSK_WITH_3DES_EDE_CBC_SHA"),
        (0x8C, "TLS_PSK_WITH_AES_128_CBC_SHA"), (0x8D, "TLS_PSK_WITH_AES_256_CBC_SHA"),
        (0x8E, "TLS_DHE_PSK_WITH_RC4_128_SHA"), (0x8F, "TLS_DHE_PSK_WITH_3DES_EDE_CBC_SHA"),
        (0x90, "TLS_DHE_PSK_WITH_AES_128_CBC_SHA"), (0x91, "TLS_DHE_PSK_WITH_AES_256_CBC_SHA"),
        (0x92, "TLS_RSA_PSK_WITH_RC4_128_SHA"), (0x93, "TLS_RSA_PSK_WITH_3DES_EDE_CBC_SHA"),
        (0x94, "TLS_RSA_PSK_WITH_AES_128_CBC_SHA"), (0x95, "TLS_RSA_PSK_WITH_AES_256_CBC_SHA"),
        (0x96, "TLS_RSA_WITH_SEED_CBC_SHA"), (0x97, "TLS_DH_DSS_WITH_SEED_CBC_SHA"),
        (0x98, "TLS_DH_RSA_WITH_SEED_CBC_SHA"), (0x99, "TLS_DHE_DSS_WITH_SEED_CBC_SHA"),
        (0x9A, "TLS_DHE_RSA_WITH_SEED_CBC_SHA"), (0x9B, "TLS_DH_anon_WITH_SEED_CBC_SHA"),
        (0x9C, "TLS_RSA_WITH_AES_128_GCM_SHA256"), (0x9D, "TLS_RSA_WITH_AES_256_GCM_SHA384"),
        (0x9E, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"), (0x9F, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384"),
        (0xA0, "TLS_DH_RSA_WITH_AES_128_GCM_SHA256"), (0xA1, "TLS_DH_RSA_WITH_AES_256_GCM_SHA384"),
        (0xA2, "TLS_DHE_DSS_WITH_AES_128_GCM_SHA256"), (0xA3, "TLS_DHE_DSS_WITH_AES_256_GCM_SHA384"),
        (0xA4, "TLS_DH_DSS_WITH_AES_128_GCM_SHA256"), (0xA5, "TLS_DH_DSS_WITH_AES_256_GCM_SHA384"),
        (0xA6, "TLS_DH_anon_WITH_AES_128_GCM_SHA256"), (0xA7, "TLS_DH_anon_WITH_AES_256_GCM_SHA384"),
        (0xA8, "TLS_PSK_WITH_AES_128_GCM_SHA256"), (0xA9, "TLS_PSK_WITH_AES_256_GCM_SHA384"),
        (0xAA, "TLS_DHE_PSK_WITH_AES_128_GCM_SHA256"), (0xAB, "TLS_DHE_PSK_WITH_AES_256_GCM_SHA384"),
        (0xAC, "TLS_RSA_PSK_WITH_AES_128_GCM_SHA256"), (0xAD, "TLS_RSA_PSK_WITH_AES_256_GCM_SHA384"),
        (0xAE, "TLS_PSK_WITH_AES_128_CBC_SHA256"), (0xAF, "TLS_PSK_WITH_AES_256_CBC_SHA384"),
        (0xB0, "TLS_PSK_WITH_NULL_SHA256"), (0xB1, "TLS_PSK_WITH_NULL_SHA384"),
        (0xB2, "TLS_DHE_PSK_WITH_AES_128_CBC_SHA256"), (0xB3, "TLS_DHE_PSK_WITH_AES_256_CBC_SHA384"),
        (0xB4, "TLS_DHE_PSK_WITH_NULL_SHA256"), (0xB5, "TLS_DHE_PSK_WITH_NULL_SHA384"),
        (0xB6, "TLS_RSA_PSK_WITH_AES_128_CBC_SHA256"), (0xB7, "TLS_RSA_PSK_WITH_AES_256_CBC_SHA384"),
        (0xB8, "TLS_RSA_PSK_WITH_NULL_SHA256"), (0xB9, "TLS_RSA_PSK_WITH_NULL_SHA384"),
        (0xBA, "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA256"), (0xBB, "TLS_DH_DSS_WITH_CAMELLIA_128_CBC_SHA256"),
        (0xBC, "TLS_DH_RSA_WITH_CAMELLIA_128_CBC_SHA256"), (0xBD, "TLS_DHE_DSS_WITH_CAMELLIA_128_CBC_SHA256"),
        (0xBE, "TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA256"), (0xBF, "TLS_DH_anon_WITH_CAMELLIA_128_CBC_SHA256"),
        (0xC0, "TLS_RSA_WITH_CAMELLIA_256_CBC_SHA256"), (0xC1, "TLS_DH_DSS_WITH_CAMELLIA_256_CBC_SHA256"),
        (0xC2, "TLS_DH_RSA_WITH_CAMELLIA_256_CBC_SHA256"), (0xC3, "TLS_DHE_DSS_WITH_CAMELLIA_256_CBC_SHA256"),
        (0xC4, "TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA256"), (0xC5, "TLS_DH_anon_WITH_CAMELLIA_256_CBC_SHA256"),
        (0xFF, "TLS_EMPTY_RENEGOTIATION_INFO_SCSV"), (0x5600, "TLS_FALLBACK_SCSV"),
        (0x1301, "TLS_AES_128_GCM_SHA256"), (0x1302, "TLS_AES_256_GCM_SHA384"),
        (0x1303, "TLS_CHACHA20_POLY1305_SHA256"), (0x1304, "TLS_AES_128_CCM_SHA256"),
        (0x1305, "TLS_AES_128_CCM_8_SHA256"),
    ]:
        t[code] = n
    # 0xC001..0xC0AF: the ECC, SRP, ARIA, Camellia and CCM block
    ecc = [
        "TLS_ECDH_ECDSA_WITH_NULL_SHA", "TLS_ECDH_ECDSA_WITH_RC4_128_SHA", "TLS_ECDH_ECDSA_WITH_3DES_EDE_CBC_SHA",
        "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA", "TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA", "TLS_ECDHE_ECDSA_WITH_NULL_SHA",
        "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", "TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA",
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "TLS_ECDH_RSA_WITH_NULL_SHA",
        "TLS_ECDH_RSA_WITH_RC4_128_SHA", "TLS_ECDH_RSA_WITH_3DES_EDE_CBC_SHA", "TLS_ECDH_RSA_WITH_AES_128_CBC_SHA",
        "TLS_ECDH_RSA_WITH_AES_256_CBC_SHA", "TLS_ECDHE_RSA_WITH_NULL_SHA", "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
        "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "TLS_ECDH_anon_WITH_NULL_SHA", "TLS_ECDH_anon_WITH_RC4_128_SHA",
        "TLS_ECDH_anon_WITH_3DES_EDE_CBC_SHA", "TLS_ECDH_anon_WITH_AES_128_CBC_SHA",
        "TLS_ECDH_anon_WITH_AES_256_CBC_SHA", "TLS_SRP_SHA_WITH_3DES_EDE_CBC_SHA",
        "TLS_SRP_SHA_RSA_WITH_3DES_EDE_CBC_SHA", "TLS_SRP_SHA_DSS_WITH_3DES_EDE_CBC_SHA",
        "TLS_SRP_SHA_WITH_AES_128_CBC_SHA", "TLS_SRP_SHA_RSA_WITH_AES_128_CBC_SHA",
        "TLS_SRP_SHA_DSS_WITH_AES_128_CBC_SHA", "TLS_SRP_SHA_WITH_AES_256_CBC_SHA",
        "TLS_SRP_SHA_RSA_WITH_AES_256_CBC_SHA", "TLS_SRP_SHA_DSS_WITH_AES_256_CBC_SHA",
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
        "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256", "TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA384",
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
        "TLS_ECDH_RSA_WITH_AES_128_CBC_SHA256", "TLS_ECDH_RSA_WITH_AES_256_CBC_SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDH_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDH_ECDSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDH_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDH_RSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_PSK_WITH_RC4_128_SHA", "TLS_ECDHE_PSK_WITH_3DES_EDE_CBC_SHA",
        "TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA", "TLS_ECDHE_PSK_WITH_AES_256_CBC_SHA",
        "TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256", "TLS_ECDHE_PSK_WITH_AES_256_CBC_SHA384",
        "TLS_ECDHE_PSK_WITH_NULL_SHA", "TLS_ECDHE_PSK_WITH_NULL_SHA256", "TLS_ECDHE_PSK_WITH_NULL_SHA384",
    ]
    for i, n in enumerate(ecc):
        t[0xC001 + i] = n
    # ARIA 0xC03C..0xC071: (key exchange, mode) pairs of 128 then 256
    aria = [
        ("RSA", "CBC"), ("DH_DSS", "CBC"), ("DH_RSA", "CBC"), ("DHE_DSS", "CBC"), ("DHE_RSA", "CBC"),
        ("DH_anon", "CBC"), ("ECDHE_ECDSA", "CBC"), ("ECDH_ECDSA", "CBC"), ("ECDHE_RSA", "CBC"),
        ("ECDH_RSA", "CBC"), ("RSA", "GCM"), ("DHE_RSA", "GCM"), ("DH_RSA", "GCM"), ("DHE_DSS", "GCM"),
        ("DH_DSS", "GCM"), ("DH_anon", "GCM"), ("ECDHE_ECDSA", "GCM"), ("ECDH_ECDSA", "GCM"),
        ("ECDHE_RSA", "GCM"), ("ECDH_RSA", "GCM"), ("PSK", "CBC"), ("DHE_PSK", "CBC"), ("RSA_PSK", "CBC"),
        ("PSK", "GCM"), ("DHE_PSK", "GCM"), ("RSA_PSK", "GCM"), ("ECDHE_PSK", "CBC"),
    ]
    code = 0xC03C
    for kx, mode in aria:
        t[code] = "TLS_%s_WITH_ARIA_128_%s_SHA256" % (kx, mode)
        t[code + 1] = "TLS_%s_WITH_ARIA_256_%s_SHA384" % (kx, mode)
        code += 2
    cam = [
        ("ECDHE_ECDSA", "CBC"), ("ECDH_ECDSA", "CBC"), ("ECDHE_RSA", "CBC"), ("ECDH_RSA", "CBC"),
        ("RSA", "GCM"), ("DHE_RSA", "GCM"), ("DH_RSA", "GCM"), ("DHE_DSS", "GCM"), ("DH_DSS", "GCM"),
        ("DH_anon", "GCM"), ("ECDHE_ECDSA", "GCM"), ("ECDH_ECDSA", "GCM"), ("ECDHE_RSA", "GCM"),
        ("ECDH_RSA", "GCM"), ("PSK", "GCM"), ("DHE_PSK", "GCM"), ("RSA_PSK", "GCM"), ("PSK", "CBC"),
        ("DHE_PSK", "CBC"), ("RSA_PSK", "CBC"), ("ECDHE_PSK", "CBC"),
    ]
    code = 0xC072
    for kx, mode in cam:
        t[code] = "TLS_%s_WITH_CAMELLIA_128_%s_SHA256" % (kx, mode)
        t[code + 1] = "TLS_%s_WITH_CAMELLIA_256_%s_SHA384" % (kx, mode)
        code += 2
    ccm = ["TLS_RSA_WITH_AES_128_CCM", "TLS_RSA_WITH_AES_256_CCM", "TLS_DHE_RSA_WITH_AES_128_CCM",
           "TLS_DHE_RSA_WITH_AES_256_CCM", "TLS_RSA_WITH_AES_128_CCM_8", "TLS_RSA_WITH_AES_256_CCM_8",
           "TLS_DHE_RSA_WITH_AES_128_CCM_8", "TLS_DHE_RSA_WITH_AES_256_CCM_8", "TLS_PSK_WITH_AES_128_CCM",
           "TLS_PSK_WITH_AES_256_CCM", "TLS_DHE_PSK_WITH_AES_128_CCM", "TLS_DHE_PSK_WITH_AES_256_CCM",
           "TLS_PSK_WITH_AES_128_CCM_8", "TLS_PSK_WITH_AES_256_CCM_8", "TLS_PSK_DHE_WITH_AES_128_CCM_8",
           "TLS_PSK_DHE_WITH_AES_256_CCM_8", "TLS_ECDHE_ECDSA_WITH_AES_128_CCM",
           "TLS_ECDHE_ECDSA_WITH_AES_256_CCM", "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8",
           "TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8"]
    for i, n in enumerate(ccm):
        t[0xC09C + i] = n
    for code, n in [
        (0xCCA8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
        (0xCCA9, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
        (0xCCAA, "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256"), (0xCCAB, "TLS_PSK_WITH_CHACHA20_POLY1305_SHA256"),
        (0xCCAC, "TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256"),
        (0xCCAD, "TLS_DHE_PSK_WITH_CHACHA20_POLY1305_SHA256"),
        (0xCCAE, "TLS_RSA_PSK_WITH_CHACHA20_POLY1305_SHA256"),
        (0xD001, "TLS_ECDHE_PSK_WITH_AES_128_GCM_SHA256"), (0xD002, "TLS_ECDHE_PSK_WITH_AES_256_GCM_SHA384"),
        (0xD003, "TLS_ECDHE_PSK_WITH_AES_128_CCM_8_SHA256"), (0xD005, "TLS_ECDHE_PSK_WITH_AES_128_CCM_SHA256"),
        (0xFEFE, "SSL_RSA_FIPS_WITH_DES_CBC_SHA"), (0xFEFF, "SSL_RSA_FIPS_WITH_3DES_EDE_CBC_SHA"),
        (0xFFE0, "SSL_RSA_FIPS_WITH_3DES_EDE_CBC_SHA"), (0xFFE1, "SSL_RSA_FIPS_WITH_DES_CBC_SHA"),
    ]:
        t[code] = n
    return t


CIPHER_SUITES: dict[int, str] = _suites()

GROUPS: dict[int, str] = {
    1: "sect163k1", 2: "sect163r1", 3: "sect163r2", 4: "sect193r1", 5: "sect193r2", 6: "sect233k1",
    7: "sect233r1", 8: "sect239k1", 9: "sect283k1", 10: "sect283r1", 11: "sect409k1", 12: "sect409r1",
    13: "sect571k1", 14: "sect571r1", 15: "secp160k1", 16: "secp160r1", 17: "secp160r2", 18: "secp192k1",
    19: "secp192r1", 20: "secp224k1", 21: "secp224r1", 22: "secp256k1", 23: "secp256r1", 24: "secp384r1",
    25: "secp521r1", 26: "brainpoolP256r1", 27: "brainpoolP384r1", 28: "brainpoolP512r1", 29: "x25519",
    30: "x448", 31: "brainpoolP256r1tls13", 32: "brainpoolP384r1tls13", 33: "brainpoolP512r1tls13",
    256: "ffdhe2048", 257: "ffdhe3072", 258: "ffdhe4096", 259: "ffdhe6144", 260: "ffdhe8192",
    0x11EB: "SecP256r1MLKEM768", 0x11EC: "X25519MLKEM768", 0x11ED: "SecP384r1MLKEM1024",
    0x6399: "X25519Kyber768Draft00",
    65281: "arbitrary_explicit_prime_curves", 65282: "arbitrary_explicit_char2_curves",
}

SIGNATURE_SCHEMES: dict[int, str] = {
    0x0401: "rsa_pkcs1_sha256", 0x0501: "rsa_pkcs1_sha384", 0x0601: "rsa_pkcs1_sha512",
    0x0403: "ecdsa_secp256r1_sha256", 0x0503: "ecdsa_secp384r1_sha384", 0x0603: "ecdsa_secp521r1_sha512",
    0x0804: "rsa_pss_sha256", 0x0805: "rsa_pss_sha384", 0x0806: "rsa_pss_sha512",
    0x0807: "ed25519", 0x0808: "ed448",
    0x0809: "rsa_pss_pss_sha256", 0x080A: "rsa_pss_pss_sha384", 0x080B: "rsa_pss_pss_sha512",
    0x0201: "rsa_pkcs1_sha1", 0x0203: "ecdsa_sha1",
}

ALERTS: dict[int, str] = {
    0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 21: "decryption_failed",
    22: "record_overflow", 30: "decompression_failure", 40: "handshake_failure", 41: "no_certificate_RESERVED",
    42: "bad_certificate", 43: "unsupported_certificate", 44: "certificate_revoked", 45: "certificate_expired",
    46: "certificate_unknown", 47: "illegal_parameter", 48: "unknown_ca", 49: "access_denied",
    50: "decode_error", 51: "decrypt_error", 60: "export_restriction_RESERVED", 70: "protocol_version",
    71: "insufficient_security", 80: "internal_error", 86: "inappropriate_fallback", 90: "user_canceled",
    100: "no_renegotiation", 109: "missing_extension", 110: "unsupported_extension",
    111: "certificate_unobtainable", 112: "unrecognized_name", 113: "bad_certificate_status_response",
    114: "bad_certificate_hash_value", 115: "unknown_psk_identity", 116: "certificate_required",
    120: "no_application_protocol",
}

COMPRESSION = {0: "NULL", 1: "DEFLATE", 64: "LZS"}
EC_POINT_FORMATS = {0: "uncompressed", 1: "ansiX962_compressed_prime", 2: "ansiX962_compressed_char2"}


def unknown16(code: int) -> str:
    return "(unknown:0x%04x)" % code


def unknown8(code: int) -> str:
    return "(unknown:0x%02x)" % code


def cipher_name(code: int) -> str:
    return CIPHER_SUITES.get(code) or unknown16(code)


def group_name(code: int) -> str:
    return GROUPS.get(code) or unknown16(code)


def sigscheme_name(code: int) -> str:
    return SIGNATURE_SCHEMES.get(code) or unknown16(code)


def alert_name(code: int) -> str:
    return ALERTS.get(code) or unknown8(code)


def severity_name(level: int) -> str:
    return "warning" if level == 1 else "fatal" if level == 2 else unknown8(level)


def compression_name(code: int) -> str:
    return COMPRESSION.get(code) or unknown8(code)


def ec_point_format_name(code: int) -> str:
    return EC_POINT_FORMATS.get(code) or unknown8(code)


def is_grease(v: int) -> bool:
    """RFC 8701 GREASE values: 0x?a?a with equal bytes."""
    return (v >> 8) == (v & 0xFF) and (v & 0x0F) == 0x0A


def version_text(major: int, minor: int) -> str:
    """Packetbeat's ``tlsVersion.String()``: ``TLS 1.2``, ``SSL 3.0``, ``(raw 7.1)``."""
    if major == 3:
        return "TLS 1.%d" % (minor - 1) if minor > 0 else "SSL 3.0"
    return "(raw %d.%d)" % (major, minor)


def protocol_version(major: int, minor: int) -> tuple[str, str]:
    """(``tls.version_protocol``, ``tls.version``) of a wire version."""
    if major == 3:
        return ("ssl", "3.0") if minor == 0 else ("tls", "1.%d" % (minor - 1))
    return "unknown", "%d.%d" % (major, minor)
