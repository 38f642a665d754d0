//! The keys and the digests, without I/O: key chains by id (the newest
//! key of a chain first), the `xkey` parameter's text, and the digest of
//! `value:data` in lower-case hex, as Kamailio's auth_xkeys computes them.

use ring::digest;

/// One key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// Its name.
    pub name: String,
    /// The shared secret.
    pub value: String,
    /// When it expires (seconds since the epoch; listed, not enforced, as
    /// Kamailio's).
    pub expires: i64,
}

/// A chain of keys sharing an id, the newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// The id (compared ignoring case).
    pub id: String,
    /// Its keys, the newest first.
    pub keys: Vec<Key>,
}

/// Every chain, in Kamailio's order: a new id goes first, a chain that
/// gets a key moves to where it was.
#[derive(Debug, Default)]
pub struct Keys {
    /// The chains.
    pub chains: Vec<Chain>,
}

impl Keys {
    /// Adds `key` to the chain `id` (first of it), or a new chain first.
    pub fn insert(&mut self, id: &str, key: Key) {
        match self.chain_mut(id) {
            Some(c) => c.keys.insert(0, key),
            None => self.chains.insert(
                0,
                Chain {
                    id: id.to_string(),
                    keys: vec![key],
                },
            ),
        }
    }

    /// The chain with this id.
    pub fn chain(&self, id: &str) -> Option<&Chain> {
        self.chains.iter().find(|c| c.id.eq_ignore_ascii_case(id))
    }

    /// The chain with this id, to change.
    pub fn chain_mut(&mut self, id: &str) -> Option<&mut Chain> {
        self.chains
            .iter_mut()
            .find(|c| c.id.eq_ignore_ascii_case(id))
    }
}

/// Reads an `xkey` parameter, `id=..;name=..;value=..[;expires=secs]`
/// (names ignoring case, values optionally quoted, `expires` counted from
/// `now`): the id and the key, or what is missing.
pub fn parse_param(text: &str, now: i64) -> Result<(String, Key), String> {
    let (mut id, mut name, mut value, mut expires) = ("", "", "", 0i64);
    for part in text.split(';') {
        let (n, v) = part.split_once('=').unwrap_or((part, ""));
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|x| x.strip_suffix('"'))
            .unwrap_or(v);
        match n.trim().to_ascii_lowercase().as_str() {
            "id" => id = v,
            "name" => name = v,
            "value" => value = v,
            "expires" => {
                let secs: i64 = v.bytes().take_while(u8::is_ascii_digit).fold(0i64, |a, d| {
                    a.saturating_mul(10).saturating_add(i64::from(d - b'0'))
                });
                expires = now.saturating_add(secs);
            }
            _ => {}
        }
    }
    if id.is_empty() || name.is_empty() || value.is_empty() {
        return Err(format!(
            "auth_xkeys: invalid xkey '{text}': id, name and value are required"
        ));
    }
    Ok((
        id.to_string(),
        Key {
            name: name.to_string(),
            value: value.to_string(),
            expires,
        },
    ))
}

/// The digest algorithm by its name (`sha256`, `sha384`, `sha512`,
/// ignoring case).
pub fn algorithm(name: &str) -> Option<&'static digest::Algorithm> {
    match name.to_ascii_lowercase().as_str() {
        "sha256" => Some(&digest::SHA256),
        "sha384" => Some(&digest::SHA384),
        "sha512" => Some(&digest::SHA512),
        _ => None,
    }
}

/// The digest of `value:data` in lower-case hex.
pub fn digest_hex(alg: &'static digest::Algorithm, value: &str, data: &str) -> String {
    let mut ctx = digest::Context::new(alg);
    ctx.update(value.as_bytes());
    ctx.update(b":");
    ctx.update(data.as_bytes());
    let d = ctx.finish();
    let mut out = String::with_capacity(d.as_ref().len() * 2);
    for b in d.as_ref() {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}

/// Whether `body` (trimmed) is the digest with `alg` of `data` under any
/// key of `chain` (hex compared ignoring case).
pub fn matches(chain: &Chain, alg: &'static digest::Algorithm, data: &str, body: &str) -> bool {
    let body = body.trim();
    if body.len() != alg.output_len() * 2 {
        return false;
    }
    let body = body.to_ascii_lowercase();
    chain
        .keys
        .iter()
        .any(|k| same(digest_hex(alg, &k.value, data).as_bytes(), body.as_bytes()))
}

/// Whether two equally long strings are equal, looking at every byte (no
/// early exit telling how much of a guess was right).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_and_chains() {
        let mut k = Keys::default();
        for p in [
            "id=abc;name=k1;value=s1;expires=10",
            "id=xyz;name=n1;value=\"o\"",
            "ID=ABC;Name=k2;value=s2",
        ] {
            let (id, key) = parse_param(p, 100).unwrap();
            k.insert(&id, key);
        }
        assert_eq!(k.chains.len(), 2);
        assert_eq!(k.chains[0].id, "xyz", "a new id goes first");
        assert_eq!(k.chains[0].keys[0].value, "o");
        let abc = k.chain("Abc").unwrap();
        assert_eq!(
            abc.keys
                .iter()
                .map(|x| (x.name.as_str(), x.expires))
                .collect::<Vec<_>>(),
            vec![("k2", 0), ("k1", 110)]
        );
        assert!(parse_param("id=a;name=b", 0).is_err());
        let (_, k) = parse_param("id=a;name=b;value=c;expires=99999999999999999999999", 5).unwrap();
        assert_eq!(k.expires, i64::MAX, "a huge expiry saturates");
    }

    #[test]
    fn digests_match_under_any_key() {
        // sha256("secret:hello") as sha256sum gives it.
        let got = digest_hex(&digest::SHA256, "secret", "hello");
        assert_eq!(
            got,
            "ac5fe2628be5dd7db643ff77935618484ee72817a34f554ed56a5fc426e54009"
        );
        let chain = Chain {
            id: "a".into(),
            keys: vec![
                Key {
                    name: "new".into(),
                    value: "other".into(),
                    expires: 0,
                },
                Key {
                    name: "old".into(),
                    value: "secret".into(),
                    expires: 0,
                },
            ],
        };
        assert!(matches(
            &chain,
            &digest::SHA256,
            "hello",
            &format!(" {} ", got.to_uppercase())
        ));
        assert!(!matches(&chain, &digest::SHA256, "hellO", &got));
        assert!(
            !matches(&chain, &digest::SHA512, "hello", &got),
            "length of another algorithm"
        );
        assert!(algorithm("SHA384").is_some() && algorithm("md5").is_none());
    }
}
