use super::*;
use std::str::FromStr;

fn origin() -> Name {
    Name::from_str("example.com.").unwrap()
}

fn wire(t: &str, text: &str) -> Vec<u8> {
    let rt = type_from_text(t).unwrap();
    rdata_from_text(rt, text, &origin()).unwrap_or_else(|e| panic!("{t} {text}: {e}"))
}

/// text → wire → text → wire, the second text in the type's own format.
fn rt(t: &str, text: &str) -> (Vec<u8>, String) {
    let rtype = type_from_text(t).unwrap();
    let w1 = wire(t, text);
    let t2 = rdata_to_text(rtype, &w1);
    assert!(
        !t2.starts_with("\\#"),
        "{t} {text}: fell back to generic: {t2}"
    );
    let w2 = wire(t, &t2);
    assert_eq!(w1, w2, "{t}: {text} -> {t2}");
    // The generic form of any type gives the same bytes.
    let g = rdata::generic_to_text(&w1);
    assert_eq!(wire(t, &g), w1);
    (w1, t2)
}

fn bad(t: &str, text: &str) -> String {
    let rt = type_from_text(t).unwrap();
    rdata_from_text(rt, text, &origin())
        .expect_err(text)
        .to_string()
}

#[test]
fn address_types() {
    assert_eq!(rt("A", "192.0.2.1").0, [192, 0, 2, 1]);
    assert_eq!(rt("AAAA", "2001:db8::1").1, "2001:db8::1");
    rt("AAAA", "::ffff:1.2.3.4");
    assert!(bad("A", "1.2.3").contains("bad IPv4"));
    assert!(bad("A", "1.2.3.4 5").contains("extra data"));
    assert!(bad("A", "\\# 3 010203").contains("must be 4 octets"));
    assert_eq!(wire("A", "\\# 4 0A00 0001"), [10, 0, 0, 1]);
    rt("EUI48", "00-00-5e-00-53-2a");
    rt("EUI64", "00-00-5e-ef-10-00-00-2a");
    assert!(bad("EUI48", "00-00-5e-00-53").contains("bad EUI"));
    rt("L32", "10 10.1.2.0");
    let (w, t) = rt("NID", "10 0014:4fff:ff20:ee64");
    assert_eq!(w, [0, 10, 0, 0x14, 0x4f, 0xff, 0xff, 0x20, 0xee, 0x64]);
    assert_eq!(t, "10 0014:4fff:ff20:ee64");
    rt("L64", "10 14:4fff:ff20:ee64");
    rt("LP", "10 l64-subnet1");
    let (w, t) = rt("WKS", "192.0.2.1 tcp smtp 80 domain 1023");
    assert_eq!(w.len(), 5 + 128);
    assert_eq!(t, "192.0.2.1 6 25 53 80 1023");
    assert_eq!(rt("WKS", "192.0.2.99 17").0, [192, 0, 2, 99, 17]);
}

#[test]
fn name_types() {
    let (w, t) = rt("NS", "ns1");
    assert_eq!(w, b"\x03ns1\x07example\x03com\x00");
    assert_eq!(t, "ns1.example.com.");
    rt("CNAME", "@");
    rt("DNAME", "Other.Example.");
    assert_eq!(rt("PTR", "a\\.b\\032c.").1, "a\\.b\\032c.");
    assert_eq!(rt("MX", "10 mail").1, "10 mail.example.com.");
    rt("AFSDB", "1 afs.example.");
    rt("RT", "10 relay");
    rt("KX", "10 kx");
    rt("RP", "admin.example. txt.example.");
    rt("MINFO", "r e");
    assert_eq!(
        rt("SRV", "0 5 5060 sip.example.").0,
        b"\0\0\0\x05\x13\xc4\x03sip\x07example\0"
    );
    rt("SOA", "ns hostmaster ( 2024010101 1h 15M 1w 300 )");
    assert_eq!(
        wire("SOA", "a. b. 1 1h 2 3 4")[10..14],
        3600u32.to_be_bytes()
    );
    assert!(bad("MX", "mail").contains("bad preference"));
    assert!(bad("NS", "a..b").contains("empty label"));
}

#[test]
fn string_types() {
    let (w, t) = rt(
        "TXT",
        "\"hello world\" unquoted \"q\\\"uote\\\\\" \"\\255\\000x\"",
    );
    assert_eq!(w, b"\x0bhello world\x08unquoted\x07q\"uote\\\x03\xff\x00x");
    assert_eq!(
        t,
        "\"hello world\" \"unquoted\" \"q\\\"uote\\\\\" \"\\255\\000x\""
    );
    rt("TXT", "\"\"");
    rt("SPF", "\"v=spf1 -all\"");
    rt("HINFO", "\"INTEL-386\" Linux");
    assert!(bad("TXT", &format!("\"{}\"", "x".repeat(256))).contains("longer than 255"));
    assert!(bad("HINFO", "cpu").contains("missing OS"));
    rt(
        "NAPTR",
        "100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:info@example.com!\" .",
    );
    rt("CAA", "0 issue \"ca.example.net; account=230123\"");
    rt("CAA", "128 tbs \"\"");
    assert!(bad("CAA", "0 is-sue \"x\"").contains("bad CAA tag"));
    rt("URI", "10 1 \"ftp://ftp1.example.com/public\"");
}

#[test]
fn dnssec_types() {
    let key = "AwEAAagAIKlVZrpC6Ia7gEzahOR+9W29euxhJhVVLOyQbSEW0O8gcCjF FVQUTf6v58fLjwBd0YI0EzrAcQqBGCzh/RStIoO8g0NfnfL2MTJRkxoX bfDaUeVPQuYEhg37NZWAJQ9VnMVDxP/VHL496M/QZxkjf5/Efucp2gaD X6RS6CXpoY68LsvPVjR0ZSwzz1apAzvN9dlzEheX7ICJBBtuA6G3LQpz W5hOA2hzCTMjJPJ8LbqF6dsV6DoBQzgul0sGIcGOYl7OyQdXfZ57relS Qageu+ipAdTTJ25AsRTAoub8ONGcLmqrAmRLKBP1dfwhYB4N7knNnulq QxA+Uk1ihz0=";
    let (w, _) = rt("DNSKEY", &format!("257 3 RSASHA256 ( {key} )"));
    assert_eq!(&w[..4], [1, 1, 3, 8]);
    rt("CDNSKEY", "0 3 0 AA==");
    rt("KEY", "256 3 8 AwEAAQ==");
    rt("DS", "60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118");
    rt(
        "DS",
        "60485 8 2 D4B7D520E7BB5F0F67674A0CCEB1E3E0614B93C4F9E99B83 83F6A1E4469DA50A",
    );
    assert!(bad("DS", "60485 8 2 D4B7").contains("needs 32 octets"));
    assert_eq!(
        wire(
            "DS",
            "1 8 SHA-256 D4B7D520E7BB5F0F67674A0CCEB1E3E0614B93C4F9E99B8383F6A1E4469DA50A"
        )[3],
        2
    );
    rt("CDS", "0 0 0 00");
    rt(
        "TA",
        "1 8 2 D4B7D520E7BB5F0F67674A0CCEB1E3E0614B93C4F9E99B8383F6A1E4469DA50A",
    );
    let (w, t) = rt(
        "RRSIG",
        "A 8 3 86400 20300101000000 ( 20240101000000 2642 example.com. oJB1W6WNGv+ldvQ3WDG0MQkg5IEhjRip8WTr PYGv07h108dUKGMeDPKijVCHX3DDKdfb+v6o B9wfuh3DTJXUAfI/M0zmO/zz8bW0Rznl8O3t GNazPwQKkRN20XPXV6nwwfoXmJQbsLNrLfkG J5D6fwFm8nN+6pBzeDQfsS3Ap3o= )",
    );
    assert_eq!(&w[..4], [0, 1, 8, 3]);
    assert!(t.starts_with("A 8 3 86400 20300101000000 20240101000000 2642 example.com. "));
    assert_eq!(wire("RRSIG", &t.replace("20240101000000", "1704067200")), w);
    rt(
        "SIG",
        "A 8 3 86400 20300101000000 20240101000000 2642 example.com. AA==",
    );
    let (w, t) = rt("NSEC", "host.example.com. A MX RRSIG NSEC TYPE1234");
    let mut want = vec![0, 6, 0x40, 0x01, 0, 0, 0, 0x03, 4, 27];
    want.extend([0; 26]);
    want.push(0x20);
    assert_eq!(&w[18..], want);
    assert_eq!(t, "host.example.com. A MX RRSIG NSEC TYPE1234");
    rt("NSEC", "a.example.");
    let (_, t) = rt(
        "NSEC3",
        "1 1 12 aabbccdd 2t7b4g4vsa5smi47k61mv5bv1a22bojr A RRSIG",
    );
    assert_eq!(
        t,
        "1 1 12 AABBCCDD 2T7B4G4VSA5SMI47K61MV5BV1A22BOJR A RRSIG"
    );
    rt("NSEC3", "1 0 0 - 2T7B4G4VSA5SMI47K61MV5BV1A22BOJR");
    rt("NSEC3PARAM", "1 0 10 -");
    rt("NSEC3PARAM", "1 0 10 D399EAAB");
    rt(
        "ZONEMD",
        "2018031900 1 1 FEBE3D4CE2EC2FFA4BA99D46CD69D6D29711E55217057BEE 7EB1A7B641A47BA7FED2DD5B97AE499FAFA4F22C6BD647DE",
    );
    assert!(bad("ZONEMD", "1 1 1 AABB").contains("shorter than 12"));
    rt("CSYNC", "66 3 A NS AAAA");
    assert!(bad("NSEC", "a. A BOGUS").contains("unknown type 'BOGUS'"));
}

#[test]
fn key_and_cert_types() {
    rt(
        "SSHFP",
        "4 2 123456789abcdef67890123456789abcdef67890123456789abcdef123456789",
    );
    rt(
        "TLSA",
        "3 1 1 ( 8755CDAA8FE24EF16CC0F2C918063185E433FAAF1415664911D9E30A924138C4 )",
    );
    rt("SMIMEA", "3 1 1 AABB");
    rt(
        "OPENPGPKEY",
        "mQINBFit2jsBEADrbl5vjVxYeAE0g0IDYCBpHirv1Sjlqxx5gjtPhb2YhvyDMXjq",
    );
    rt("CERT", "PGP 0 0 AAECAwQ=");
    assert_eq!(wire("CERT", "PKIX 1 RSASHA256 AA==")[..5], [0, 1, 0, 1, 8]);
    rt("DHCID", "AAIBY2/AuCccgoJbsaxcQc9TUapptP69lOjxfNuVAA2kjEA=");
    rt(
        "IPSECKEY",
        "10 1 2 192.0.2.38 AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==",
    );
    rt(
        "IPSECKEY",
        "10 0 2 . AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==",
    );
    rt(
        "IPSECKEY",
        "10 3 2 gw.example.net. AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==",
    );
    rt(
        "IPSECKEY",
        "10 2 2 2001:0DB8:0:8002::2000:1 AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==",
    );
    rt(
        "HIP",
        "2 200100107B1A74DF365639CC39F1D578 AwEAAbdxyhNuSutc5EMzxTs9LBPCIkOFH8cIvM4p9+LrV4e19WzK00+CI6zBCQTdtWsuxKbWIy87UOoJTwkUs7lBu+Upr1gsNrut79ryra+bSRGQb1slImA8YVJyuIDsj7kwzG7jnERNqnWxZ48AWkskmdHaVDP4BcelrTI3rMXdXF5D rvs.example.com. rvs2",
    );
}

#[test]
fn rarer_types() {
    rt("X25", "311061700956");
    rt("ISDN", "\"150862028003217\" \"004\"");
    rt("ISDN", "150862028003217");
    rt("PX", "10 net2.it. PRMD-net2.ADMD-p400.C-it.");
    rt("NSAP-PTR", "foo.example.");
    rt("TALINK", "a.example. b");
    for t in ["NINFO", "AVC", "RESINFO", "WALLET"] {
        rt(t, "\"a\" b");
    }
    rt("RKEY", "0 3 8 AwEAAQ==");
    rt("GPOS", "-32.6882 116.8652 10.0");
    rt("EID", "7e0a1b2c3d");
    rt("NIMLOC", "32");
    let (w, t) = rt("DSYNC", "CDS NOTIFY 5359 cds-scanner.example.net.");
    assert_eq!(&w[..5], [0, 59, 1, 0x14, 0xef]);
    assert_eq!(t, "CDS 1 5359 cds-scanner.example.net.");
    assert_eq!(
        rt("AMTRELAY", "10 1 3 amtrelays.example.com.").0[..2],
        [10, 0x83]
    );
    rt("AMTRELAY", "10 0 1 203.0.113.15");
    rt("AMTRELAY", "10 0 2 2001:db8::15");
    assert_eq!(rt("AMTRELAY", "10 0 0 .").0, [10, 0]);
    let (w, t) = rt("NSAP", "0x47.0005.80.005a00.0000.0001.e133.ffffff000161.00");
    assert_eq!(w.len(), 20);
    assert_eq!(t, "0x47000580005a0000000001e133ffffff00016100");
    rt("SINK", "1 0 0 AQ==");
    rt("SINK", "1 0 0");
    assert!(bad("NULL", "abc").contains("type NULL is not supported"));
}

#[test]
fn loc_apl_svcb() {
    let (_, t) = rt(
        "LOC",
        "52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m",
    );
    assert_eq!(
        t,
        "52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000.00m 10.00m"
    );
    let (w, t) = rt("LOC", "42 21 54 N 71 06 18 W -24m 30m");
    assert_eq!(w[1..4], [0x33, 0x16, 0x13]);
    assert_eq!(
        t,
        "42 21 54.000 N 71 6 18.000 W -24.00m 30.00m 10000.00m 10.00m"
    );
    rt("LOC", "32 7 19 S 116 2 25 E 10m");
    rt("LOC", "90 S 180 W 42849672.95m 90000000m 0.01 1");
    assert!(bad("LOC", "91 N 0 E 0m").contains("out of range"));
    assert!(bad("LOC", "1 2 3 X 0 E 0m").contains("expected N or S"));
    // Non-canonical precision (mantissa 0, exponent 5) has no text form.
    let mut w = wire("LOC", "1 N 1 E 0m");
    w[2] = 0x05;
    assert!(rdata_to_text(RecordType::from(29), &w).starts_with("\\# 16 "));

    let (w, t) = rt("APL", "1:192.168.32.0/21 !1:192.168.38.0/28 2:ff00::/8");
    assert_eq!(&w[..7], [0, 1, 21, 3, 192, 168, 32]);
    assert_eq!(t, "1:192.168.32.0/21 !1:192.168.38.0/28 2:ff00::/8");
    assert!(wire("APL", "").is_empty());
    assert_eq!(rdata_to_text(RecordType::from(42), &[]), "");

    let (w, t) = rt(
        "SVCB",
        "1 . alpn=h2,h3 dohpath=/q{?dns} port=53 ech=AAAA key9999=abc mandatory=alpn,port no-default-alpn ipv4hint=1.2.3.4,5.6.7.8 ipv6hint=::1",
    );
    assert_eq!(&w[..9], [0, 1, 0, 0, 0, 0, 4, 0, 1]);
    assert_eq!(
        t,
        "1 . mandatory=alpn,port alpn=\"h2,h3\" no-default-alpn port=53 ipv4hint=1.2.3.4,5.6.7.8 ech=AAAA ipv6hint=::1 key7=\"/q{?dns}\" key9999=\"abc\""
    );
    let (w, t) = rt("HTTPS", "1 . alpn=\"f\\\\\\\\oo\\\\,bar,h2\" key65000");
    assert_eq!(
        &w[3..],
        b"\x00\x01\x00\x0c\x08f\\oo,bar\x02h2\xfd\xe8\x00\x00"
    );
    assert_eq!(t, "1 . alpn=\"f\\\\\\\\oo\\\\,bar,h2\" key65000");
    rt("HTTPS", "0 svc.example.");
    assert_eq!(
        wire("SVCB", "1 . mandatory=port,alpn alpn=h2 port=1"),
        wire("SVCB", "1 . port=1 alpn=h2 mandatory=alpn,port")
    );
    assert_eq!(
        wire("SVCB", "1 . alpn=h2,h3\\044h4"),
        wire("SVCB", "1 . alpn=\"h2,h3,h4\"")
    );
    assert_eq!(
        wire("SVCB", "1 . key1=\\002h2"),
        wire("SVCB", "1 . alpn=h2")
    );
    assert!(bad("SVCB", "1 . port=1 port=2").contains("duplicate"));
    assert!(bad("SVCB", "1 . bogus=1").contains("unknown SVCB key"));
    // Keys out of order on the wire cannot be written in presentation form.
    let w = [0, 1, 0, 0, 3, 0, 2, 0, 53, 0, 2, 0, 0];
    assert!(rdata_to_text(RecordType::SVCB, &w).starts_with("\\# 13 "));
}

#[test]
fn generic_and_unsupported() {
    assert_eq!(wire("TYPE65000", "\\# 3 abcdef"), [0xab, 0xcd, 0xef]);
    assert_eq!(wire("TYPE65000", "\\# 0"), b"");
    assert_eq!(
        rdata_to_text(RecordType::from(65000), &[1, 2]),
        "\\# 2 0102"
    );
    assert!(bad("TYPE65000", "\\# 3 abcd").contains("length says 3"));
    let e = bad("NXT", "a. A");
    assert!(e.contains("type NXT is not supported"), "{e}");
    assert!(bad("TYPE65000", "abc").contains("TYPE65000"));
    assert_eq!(wire("WKS", "\\# 5 0102030406"), [1, 2, 3, 4, 6]);
    assert!(bad("OPT", "\\# 0").contains("cannot appear"));
    assert_eq!(type_to_text(RecordType::from(65000)), "TYPE65000");
    assert_eq!(type_from_text("type1"), Some(RecordType::A));
    assert_eq!(type_from_text("nsec3param"), Some(RecordType::NSEC3PARAM));
}

fn parse(text: &str) -> Result<Vec<Record>, ZoneFileError> {
    parse_str(text, &origin(), "test.zone")
}

fn wires(recs: &[Record]) -> Vec<(String, u16, u32, Vec<u8>)> {
    recs.iter()
        .map(|r| {
            let n: Vec<Vec<u8>> = r.name.iter().map(<[u8]>::to_vec).collect();
            (
                format!("{n:?}"),
                u16::from(r.record_type()),
                r.ttl,
                crate::rr::rdata_to_wire(&r.data),
            )
        })
        .collect()
}

#[test]
fn directives_and_defaults() {
    let z = "\
$TTL 1h
@ IN SOA ns hostmaster (
        1 ; serial
        2h 3h 4w 5m )
        NS ns
ns 300 A 192.0.2.1
   IN 600 AAAA ::1
$ORIGIN Sub.example.com.
WWW CLASS1 TXT \"a;b\" ; comment
$TTL 2d
* MX 10 @
";
    let r = parse(z).unwrap();
    let names: Vec<String> = r.iter().map(|r| name_to_text(&r.name)).collect();
    assert_eq!(
        names,
        [
            "example.com.",
            "example.com.",
            "ns.example.com.",
            "ns.example.com.",
            "WWW.Sub.example.com.",
            "*.Sub.example.com."
        ]
    );
    let ttls: Vec<u32> = r.iter().map(|r| r.ttl).collect();
    assert_eq!(ttls, [3600, 3600, 300, 600, 3600, 172_800]);
    assert_eq!(crate::rr::rdata_to_wire(&r[4].data), b"\x03a;b");
    assert_eq!(
        crate::rr::rdata_to_wire(&r[5].data),
        b"\x00\x0a\x03Sub\x07example\x03com\x00"
    );
    assert!(
        r[4].name.iter().next() == Some(&b"WWW"[..]),
        "owner case kept"
    );
}

#[test]
fn rfc1035_ttl_semantics() {
    // No $TTL: the SOA minimum becomes the default, as BIND does.
    let r = parse("@ SOA ns hm 1 2 3 4 42\na 7 A 1.2.3.4\nb A 1.2.3.5\n").unwrap();
    assert_eq!(r.iter().map(|r| r.ttl).collect::<Vec<_>>(), [42, 7, 42]);
    // No $TTL and no SOA first: the last explicit TTL carries on.
    let r = parse("a 7 A 1.2.3.4\nb A 1.2.3.5\n").unwrap();
    assert_eq!(r[1].ttl, 7);
    let e = parse("\n\na A 1.2.3.4\n").unwrap_err().to_string();
    assert_eq!(e, "test.zone:3: no TTL specified and no $TTL default");
    let r = parse("a 2147483648 A 1.2.3.4\n").unwrap();
    assert_eq!(r[0].ttl, 0);
}

#[test]
fn errors_name_file_and_line() {
    let cases = [
        (
            "$TTL 1\na A 1.2.3.4\nb A 1.2.3\n",
            "test.zone:3: bad A record: bad IPv4 address '1.2.3'",
        ),
        (
            "$TTL 1\na CH A 1.2.3.4\n",
            "test.zone:2: class CH is not supported (IN only)",
        ),
        ("$TTL 1\na IN FOO x\n", "test.zone:2: unknown type 'FOO'"),
        (
            "$TTL 1\n\n a A 1.2.3.4\n",
            "test.zone:3: no owner name (first record has a blank owner)",
        ),
        (
            "$TTL 1\na SOA ( ns hm\n 1 2 3 4 5\n",
            "test.zone:2: unbalanced '(' (no matching ')')",
        ),
        (
            "$TTL 1\na TXT \"abc\n",
            "test.zone:2: unterminated quoted string",
        ),
        ("$TTL x\n", "test.zone:1: bad TTL 'x'"),
        (
            "$GENERATE 1-2 a A 1.2.3.$\n",
            "test.zone:1: unsupported directive $GENERATE",
        ),
        (
            "$TTL 1\na A\n",
            "test.zone:2: bad A record: missing address",
        ),
        ("$TTL 1\na\n", "test.zone:2: missing type"),
        (
            "$TTL 1\na MX 10 a\\300\n",
            "test.zone:2: bad MX record: escape \\300 is above 255 in name 'a\\300'",
        ),
        (
            "$TTL 1\na..b A 1.2.3.4\n",
            "test.zone:2: empty label in name 'a..b'",
        ),
        (
            "$INCLUDE /nonexistent/x\n",
            "test.zone:1: cannot read $INCLUDE file /nonexistent/x: No such file or directory (os error 2)",
        ),
    ];
    for (z, want) in cases {
        assert_eq!(parse(z).unwrap_err().to_string(), want, "{z}");
    }
}

#[test]
fn escapes_and_odd_names() {
    let r = parse(
        "$TTL 1\na\\.b\\000\\\"\\(\\)\\;\\ \\@\\$ A 1.2.3.4\n\\$x TXT \"\\\"\\\\\\010\" x\\ y\n",
    )
    .unwrap();
    let labels: Vec<&[u8]> = r[0].name.iter().collect();
    assert_eq!(labels[0], b"a.b\0\"(); @$");
    let text = name_to_text(&r[0].name);
    assert_eq!(text, "a\\.b\\000\\\"\\(\\)\\;\\032\\@\\$.example.com.");
    assert_eq!(r[1].name.iter().next(), Some(&b"$x"[..]));
    assert_eq!(crate::rr::rdata_to_wire(&r[1].data), b"\x03\"\\\n\x03x y");
}

#[test]
fn includes() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    // Relative to the including file's directory (sub/), and with its own origin.
    // An included file inherits the current owner; the includer's is restored after.
    std::fs::write(
        dir.path().join("main.zone"),
        "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n$INCLUDE sub/a.inc other\nafter A 1.1.1.1\n\
         $INCLUDE sub/c.inc\n\tTXT \"after again\"\n",
    )
    .unwrap();
    std::fs::write(sub.join("a.inc"), "x A 2.2.2.2\n$INCLUDE b.inc\n").unwrap();
    std::fs::write(sub.join("b.inc"), "\tTXT \"x's\"\ny A 3.3.3.3\n").unwrap();
    std::fs::write(sub.join("c.inc"), "\tTXT \"after's\"\nz A 4.4.4.4\n").unwrap();
    let r = parse_file(&dir.path().join("main.zone"), &origin()).unwrap();
    let names: Vec<String> = r.iter().map(|r| name_to_text(&r.name)).collect();
    assert_eq!(
        names,
        [
            "example.com.",
            "x.other.example.com.",
            "x.other.example.com.",
            "y.other.example.com.",
            "after.example.com.",
            "after.example.com.",
            "z.example.com.",
            "after.example.com.",
        ]
    );

    std::fs::write(sub.join("bad.inc"), "z A 1\n").unwrap();
    std::fs::write(
        dir.path().join("bad.zone"),
        "$TTL 60\n$INCLUDE sub/bad.inc\n",
    )
    .unwrap();
    let e = parse_file(&dir.path().join("bad.zone"), &origin())
        .unwrap_err()
        .to_string();
    assert!(
        e.ends_with("sub/bad.inc:1: bad A record: bad IPv4 address '1'"),
        "{e}"
    );

    std::fs::write(dir.path().join("loop.zone"), "$INCLUDE loop.zone\n").unwrap();
    let e = parse_file(&dir.path().join("loop.zone"), &origin())
        .unwrap_err()
        .to_string();
    assert!(e.contains("nested deeper than 16"), "{e}");

    let e = parse_file(&dir.path().join("missing.zone"), &origin())
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing.zone: No such file"), "{e}");
}

#[test]
fn write_round_trip() {
    let z = r#"$TTL 300
a TXT "x" "\"q\\" "\000\255 ;()"
@ SOA ns hm 1 2 3 4 5
@ NS ns
a\.b\032\@ MX 10 \$odd\.name
Up.Case AAAA ::1
x TYPE65000 \# 2 abcd
x WKS \# 5 0102030406
x LOC \# 16 00053344 89ABCDEF 89ABCDEF 00989680
l LOC 52 22 23.000 N 4 53 32.000 E -2.00m
s SVCB 1 . alpn=h2 port=8443
c CAA 0 issue "letsencrypt.org"
n NSEC3 1 1 12 aabbccdd 2t7b4g4vsa5smi47k61mv5bv1a22bojr A RRSIG TYPE1234
k DNSKEY 257 3 8 AwEAAQ==
"#;
    let recs = parse(z).unwrap();
    let mut out = Vec::new();
    write_zone(&mut out, &origin(), &recs).unwrap();
    let text = String::from_utf8(out).unwrap();
    let mut lines = text.lines().skip(1);
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("example.com. 300 IN SOA ")
    );
    assert!(
        text.contains("\na\\.b\\032\\@.example.com. 300 IN MX 10 \\$odd\\.name.example.com.\n"),
        "{text}"
    );
    assert!(text.contains("IN TYPE65000 \\# 2 ABCD\n"));
    let back = parse_str(&text, &Name::from_str("elsewhere.").unwrap(), "written").unwrap();
    let mut want = wires(&recs);
    let soa = want.remove(1);
    want.insert(0, soa);
    assert_eq!(wires(&back), want);
}

/// Throughput on a large generated zone. Prints the figures (run with
/// `--nocapture`; `OUTPOST_ZONEFILE_RECORDS=1000000` and `--release` for the
/// real measure) and checks the content, never the time.
#[test]
fn large_zone_throughput() {
    let n: usize = std::env::var("OUTPOST_ZONEFILE_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let mut z = String::with_capacity(n * 120);
    z.push_str("$TTL 3600\n@ SOA ns hm 1 2 3 4 5\n");
    let sig = "RRSIG A 13 3 3600 20300101000000 20240101000000 12345 example.com. oJB1W6WNGv+ldvQ3WDG0MQkg5IEhjRip8WTrPYGv07h108dUKGMeDPKijVCHX3DDKdfb+v6oB9wfuh3DTJXUAfI=";
    let mut i = 0;
    while i + 1 < n {
        let h = i / 4;
        match i % 4 {
            0 => z.push_str(&format!(
                "host{h} A 10.{}.{}.{}\n",
                h >> 16 & 255,
                h >> 8 & 255,
                h & 255
            )),
            1 => z.push_str(&format!("\tAAAA 2001:db8::{:x}\n", h & 0xffff)),
            2 => z.push_str(&format!("\tTXT \"record {h}\" \"second string\"\n")),
            _ => z.push_str(&format!("\t{sig}\n")),
        }
        i += 1;
    }
    let t0 = std::time::Instant::now();
    let recs = parse(&z).unwrap();
    let parse_time = t0.elapsed();
    assert_eq!(recs.len(), n);
    let t1 = std::time::Instant::now();
    let mut out = Vec::with_capacity(z.len() * 2);
    write_zone(&mut out, &origin(), &recs).unwrap();
    let write_time = t1.elapsed();
    eprintln!(
        "zonefile: {n} records ({} MB): parse {:.2?} ({:.0} rec/s), write {:.2?}",
        z.len() / 1_000_000,
        parse_time,
        n as f64 / parse_time.as_secs_f64(),
        write_time
    );
    let back = parse_str(std::str::from_utf8(&out).unwrap(), &origin(), "written").unwrap();
    assert_eq!(wires(&back[n - 3..]), wires(&recs[n - 3..]));
}
