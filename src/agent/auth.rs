//! Message signatures (docs/protocol.md §2): Heartbeat's unkeyed CRC, HMAC-MD5 and HMAC-SHA1
//! tokens, signing an outgoing message exactly as 3.0.6 does (a classic `auth` field inside the
//! body when msgfmt is classic, then the netstring trailer over the whole body), and the
//! receiver's checks — including the 3.0.6 quirk that a netstring trailer with index `n` is
//! checked with entry `n`'s method but the receiver's *active* key — and the agent's own,
//! wider rule, which also accepts entry `n`'s own key, so a key can be rotated with no moment
//! of mistrust. Keys come from the authkeys model; this module never reads files.

use hmac::{Hmac, KeyInit, Mac};
use md5::Md5;
use sha1::Sha1;

use crate::agent::wire::{Datagram, Encoding, MAX_MESSAGE, Message, Value, WireError};
use crate::config::ha::{AuthMethod, MsgFormat};
use crate::config::heartbeat::authkeys::{AuthKey, AuthKeys};

/// The outcome of checking one signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verification {
    /// The signature matches; `index` is the authkeys entry it named.
    Ok { index: u8 },
    /// The index is configured but the token differs.
    BadSignature { index: u8 },
    /// The index is not configured here (or is beyond 0..=15).
    UnknownKeyIndex { index: u32 },
    /// There is no signature to check.
    Missing,
    /// The signature is not `<index> <token>`.
    Malformed,
}

impl Verification {
    pub fn is_ok(self) -> bool {
        matches!(self, Verification::Ok { .. })
    }
}

/// Heartbeat's crc plugin: CRC-32 with polynomial 0x04C11DB7, MSB first, initial value 0,
/// final XOR 0xFFFFFFFF, no reflection and no length suffix — the catalogue's CRC-32/CKSUM
/// (crc32fast computes the reflected IEEE variant, which gives different values).
pub fn crc(data: &[u8]) -> u32 {
    const CKSUM: ::crc::Crc<u32> = ::crc::Crc::<u32>::new(&::crc::CRC_32_CKSUM);
    CKSUM.checksum(data)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The token a method writes for `data`: lower-case hex; crc without leading zeros (`%lx`).
/// `key` is ignored by crc.
pub fn token(method: AuthMethod, key: &[u8], data: &[u8]) -> String {
    match method {
        AuthMethod::Crc => format!("{:x}", crc(data)),
        AuthMethod::Md5 => {
            // HMAC accepts keys of any length, so this cannot fail.
            let mut mac = Hmac::<Md5>::new_from_slice(key).expect("HMAC takes any key length");
            mac.update(data);
            hex(&mac.finalize().into_bytes())
        }
        AuthMethod::Sha1 => {
            let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("HMAC takes any key length");
            mac.update(data);
            hex(&mac.finalize().into_bytes())
        }
    }
}

/// `<index> <token>` as written in the `auth` field and the trailer.
pub fn auth_string(key: &AuthKey, data: &[u8]) -> String {
    format!(
        "{} {}",
        key.index,
        token(key.method, key.secret.as_bytes(), data)
    )
}

/// Splits `<index> <token>`. Strict about shape: a real sender writes `%d %s`.
fn parse_auth(text: &[u8]) -> Option<(u32, &[u8])> {
    let space = text.iter().position(|&b| b == b' ')?;
    let (index, token) = (&text[..space], &text[space + 1..]);
    if index.is_empty() || index.len() > 9 || !index.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if token.is_empty() || token.iter().any(|b| b.is_ascii_whitespace() || *b == 0) {
        return None;
    }
    let index = std::str::from_utf8(index).ok()?.parse().ok()?;
    Some((index, token))
}

/// Checks `signature` over `data` with the entry the signature names, signing with `key_of`
/// that entry (which key differs between the classic and the netstring rule).
fn check(
    signature: &[u8],
    data: &[u8],
    keys: &AuthKeys,
    key_of: impl Fn(&AuthKey) -> Vec<u8>,
) -> Verification {
    let Some((index, got)) = parse_auth(signature) else {
        return Verification::Malformed;
    };
    let Some(entry) = u8::try_from(index).ok().and_then(|i| keys.get(i)) else {
        return Verification::UnknownKeyIndex { index };
    };
    let index = entry.index;
    // A plain string compare, as heartbeat's strcmp: upper-case hex does not match.
    if token(entry.method, &key_of(entry), data).as_bytes() == got {
        Verification::Ok { index }
    } else {
        Verification::BadSignature { index }
    }
}

/// The classic rule (PROTOCOL §2.5): the `auth` field's index selects an entry and that
/// entry's method *and key* recompute the token over the classic sign text. What a receiver
/// checks for a classic datagram.
pub fn verify_inner(message: &Message, keys: &AuthKeys) -> Verification {
    let Some(Value::String(signature)) = message.get("auth") else {
        return match message.get("auth") {
            None => Verification::Missing,
            Some(_) => Verification::Malformed,
        };
    };
    let Ok(text) = message.classic_sign_text() else {
        return Verification::Malformed;
    };
    check(signature, &text, keys, |entry| {
        entry.secret.clone().into_bytes()
    })
}

/// The netstring rule (PROTOCOL §2.5): the trailer's index must be configured, and its
/// entry's *method* recomputes the token with the receiver's *active* key — 3.0.6 passes the
/// active entry's key whatever the index says. Nodes whose active keys differ therefore reject
/// each other even when both entries are configured on both sides.
pub fn verify_trailer(datagram: &Datagram, keys: &AuthKeys) -> Verification {
    let Some(trailer) = &datagram.trailer else {
        return Verification::Missing;
    };
    let active = keys.active_key().secret.clone().into_bytes();
    check(trailer, &datagram.signed, keys, |_| active.clone())
}

/// What a 3.0.6 receiver accepts: the trailer for netstring (the inner field is ignored),
/// the inner `auth` field for classic.
pub fn verify(datagram: &Datagram, keys: &AuthKeys) -> Verification {
    match datagram.encoding {
        Encoding::Netstring => verify_trailer(datagram, keys),
        Encoding::Classic => verify_inner(&datagram.message, keys),
    }
}

/// What the agent accepts: everything a 3.0.6 receiver accepts ([`verify`]), and also a
/// netstring trailer whose token matches under the named entry's *own* key. That second reading
/// is what lets a cluster rotate its key without a moment of mistrust: while one node already
/// signs with the new entry and the others still sign with the old, each side lists both and
/// verifies the other. (3.0.6 itself cannot; see [`verify_trailer`].) What the agent sends is
/// unchanged, so every 3.0.6 peer reads it as before.
pub fn verify_accepting(datagram: &Datagram, keys: &AuthKeys) -> Verification {
    let as_306 = verify(datagram, keys);
    match (as_306, datagram.encoding, &datagram.trailer) {
        (Verification::BadSignature { .. }, Encoding::Netstring, Some(trailer)) => {
            check(trailer, &datagram.signed, keys, |entry| {
                entry.secret.clone().into_bytes()
            })
        }
        _ => as_306,
    }
}

/// The datagram 3.0.6 sends for `message` (its automatic fields already added): with
/// `MsgFormat::Classic` the `auth` field is set (replaced in place if present) over the classic
/// text, then the netstring body is signed into the trailer — both with the active key.
pub fn sign(message: &Message, keys: &AuthKeys, fmt: MsgFormat) -> Result<Vec<u8>, WireError> {
    let active = keys.active_key();
    let mut message = message.clone();
    if fmt == MsgFormat::Classic {
        let text = message.classic_sign_text()?;
        message.set("auth", Value::string(&auth_string(active, &text)));
    }
    let mut out = message.to_netstring()?;
    let trailer = auth_string(active, &out);
    out.extend_from_slice(format!("{}:{trailer},", trailer.len()).as_bytes());
    if out.len() > MAX_MESSAGE {
        return Err(WireError::TooLarge(out.len()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::wire::decode;
    use std::collections::BTreeMap;

    fn keys(active: u8, entries: &[(u8, AuthMethod, &str)]) -> AuthKeys {
        AuthKeys {
            active,
            keys: entries
                .iter()
                .map(|&(index, method, secret)| {
                    (
                        index,
                        AuthKey {
                            index,
                            method,
                            secret: secret.to_string(),
                        },
                    )
                })
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn crc_is_the_posix_variant_without_length() {
        // reveng's catalogue check value for CRC-32/POSIX (the algorithm alone; `cksum` would
        // also feed in the length, heartbeat does not).
        assert_eq!(crc(b"123456789"), 0x765e_7680);
        assert_eq!(crc(b""), 0xffff_ffff);
        // Unpadded hex: a small value prints fewer than eight digits.
        assert_eq!(format!("{:x}", 0x0abc_u32), "abc");
    }

    #[test]
    fn hmac_matches_rfc_2202() {
        assert_eq!(
            token(AuthMethod::Md5, b"Jefe", b"what do ya want for nothing?"),
            "750c783e6ab0b503eaa86e310a5db738"
        );
        assert_eq!(
            token(AuthMethod::Sha1, b"Jefe", b"what do ya want for nothing?"),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }

    #[test]
    fn auth_strings_are_parsed_strictly() {
        assert_eq!(parse_auth(b"1 ab"), Some((1, &b"ab"[..])));
        for bad in [
            &b"1ab"[..],
            b" 1 ab",
            b"1 ",
            b"x ab",
            b"1 a b",
            b"-1 ab",
            b"1234567890 a",
        ] {
            assert_eq!(parse_auth(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn sign_then_verify_in_both_formats() {
        let k = keys(1, &[(1, AuthMethod::Sha1, "testkey")]);
        let mut m = Message::new();
        m.push_str("t", "status");
        m.push_str("src", "nodea");
        for fmt in [MsgFormat::Classic, MsgFormat::Netstring] {
            let bytes = sign(&m, &k, fmt).unwrap();
            let d = decode(&bytes).unwrap();
            assert_eq!(verify(&d, &k), Verification::Ok { index: 1 });
            assert_eq!(d.message.auth().is_some(), fmt == MsgFormat::Classic);
            if fmt == MsgFormat::Classic {
                assert_eq!(verify_inner(&d.message, &k), Verification::Ok { index: 1 });
            }
        }
    }

    #[test]
    fn netstring_uses_the_active_key_with_the_packets_method() {
        let sender = keys(
            2,
            &[
                (1, AuthMethod::Sha1, "keyone"),
                (2, AuthMethod::Md5, "keytwo"),
            ],
        );
        let receiver = keys(
            1,
            &[
                (1, AuthMethod::Sha1, "keyone"),
                (2, AuthMethod::Md5, "keytwo"),
            ],
        );
        let mut m = Message::new();
        m.push_str("t", "status");
        let d = decode(&sign(&m, &sender, MsgFormat::Classic).unwrap()).unwrap();
        assert_eq!(verify(&d, &sender), Verification::Ok { index: 2 });
        assert_eq!(
            verify(&d, &receiver),
            Verification::BadSignature { index: 2 }
        );
        // The classic rule would have accepted it: entry 2's own key.
        assert_eq!(
            verify_inner(&d.message, &receiver),
            Verification::Ok { index: 2 }
        );
        // The agent's rule accepts it under entry 2's own key; an unknown index or a token that
        // matches no listed key stays refused.
        assert_eq!(
            verify_accepting(&d, &receiver),
            Verification::Ok { index: 2 }
        );
        let forged = keys(
            1,
            &[
                (1, AuthMethod::Sha1, "keyone"),
                (2, AuthMethod::Md5, "other"),
            ],
        );
        assert_eq!(
            verify_accepting(&d, &forged),
            Verification::BadSignature { index: 2 }
        );
        let only_one = keys(1, &[(1, AuthMethod::Sha1, "keyone")]);
        assert_eq!(
            verify_accepting(&d, &only_one),
            Verification::UnknownKeyIndex { index: 2 }
        );
        assert_eq!(
            verify(&d, &only_one),
            Verification::UnknownKeyIndex { index: 2 }
        );
    }

    #[test]
    fn missing_and_malformed() {
        let k = keys(3, &[(3, AuthMethod::Crc, "")]);
        let d = decode(b"###\n7:(0)t=xy,%%%\n").unwrap();
        assert_eq!(verify(&d, &k), Verification::Missing);
        assert_eq!(verify_inner(&d.message, &k), Verification::Missing);
        let d = decode(b"###\n7:(0)t=xy,%%%\n2:3x,").unwrap();
        assert_eq!(verify(&d, &k), Verification::Malformed);
        let d = decode(b">>>\nt=xy\n(1)auth=AA==\n<<<\n").unwrap();
        assert_eq!(verify(&d, &k), Verification::Malformed);
        let d = decode(b"###\n7:(0)t=xy,%%%\n7:99 abcd,").unwrap();
        assert_eq!(verify(&d, &k), Verification::UnknownKeyIndex { index: 99 });
    }
}
