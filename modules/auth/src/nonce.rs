//! Nonces: `<expiry:8 hex><index:8 hex><mac:32 hex>`, where the mac is
//! HMAC-SHA-256 of expiry and index under the module's `secret`
//! (truncated to 128 bits). A nonce is accepted until its expiry; with
//! nonce-count checking, each (nonce, nc) pair is accepted once and nc
//! must grow.

use crate::digest::{ct_eq_lower, hmac_sha256, Hex, HmacKey};
use sr_sdk::sip_msg::text::push_hex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

/// Why a nonce was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceError {
    /// Not one of ours (bad format or mac): a forgery or another secret.
    Invalid,
    /// Ours, but past its expiry.
    Expired,
    /// This nonce-count (or a higher one) was used already.
    Reused,
}

const SHARDS: usize = 16;

/// Nonce maker and checker.
#[derive(Debug)]
pub struct Nonces {
    key: HmacKey,
    next: AtomicU32,
    /// index -> (highest nc accepted, expiry)
    seen: Vec<Mutex<HashMap<u32, (u32, i64)>>>,
}

impl Nonces {
    /// A checker with a secret.
    pub fn new(secret: &[u8]) -> Nonces {
        Nonces {
            key: HmacKey::new(secret),
            next: AtomicU32::new(random_u32()),
            seen: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn mac(&self, expires: u32, index: u32) -> Hex {
        let mut m = [0u8; 8];
        m[..4].copy_from_slice(&expires.to_be_bytes());
        m[4..].copy_from_slice(&index.to_be_bytes());
        Hex::of(&self.key.mac(&m)[..16])
    }

    /// A fresh nonce valid until `now + lifetime`.
    #[cfg(test)]
    pub fn make(&self, now: i64, lifetime: i64) -> String {
        let mut s = String::with_capacity(48);
        self.make_into(&mut s, now, lifetime);
        s
    }

    /// A fresh nonce valid until `now + lifetime`, appended to `out`.
    pub fn make_into(&self, out: &mut String, now: i64, lifetime: i64) {
        let expires = (now + lifetime.max(1)).clamp(0, u32::MAX as i64) as u32;
        let index = self.next.fetch_add(1, Ordering::Relaxed);
        // (Eight hex digits each, as `{:08x}`.)
        push_hex(out, &expires.to_be_bytes());
        push_hex(out, &index.to_be_bytes());
        out.push_str(self.mac(expires, index).as_str());
    }

    /// Decodes and authenticates a nonce: (expiry, index).
    pub fn decode(&self, nonce: &str) -> Result<(i64, u32), NonceError> {
        if nonce.len() != 48 || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(NonceError::Invalid);
        }
        let expires = u32::from_str_radix(&nonce[..8], 16).map_err(|_| NonceError::Invalid)?;
        let index = u32::from_str_radix(&nonce[8..16], 16).map_err(|_| NonceError::Invalid)?;
        let want = self.mac(expires, index);
        if !ct_eq_lower(want.as_str().as_bytes(), &nonce.as_bytes()[16..]) {
            return Err(NonceError::Invalid);
        }
        Ok((expires as i64, index))
    }

    /// Checks a nonce's mac and expiry at `now`.
    pub fn check(&self, nonce: &str, now: i64) -> Result<(i64, u32), NonceError> {
        let (exp, idx) = self.decode(nonce)?;
        if exp <= now {
            return Err(NonceError::Expired);
        }
        Ok((exp, idx))
    }

    /// Records a use of nonce `index` with nonce-count `nc`: refused when
    /// this nc or a higher one was recorded before. Entries of expired
    /// nonces are forgotten (those nonces are refused as expired anyway).
    pub fn use_nc(&self, index: u32, expires: i64, nc: u32, now: i64) -> Result<(), NonceError> {
        let mut m = self.seen[index as usize % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if m.len() > 4096 {
            m.retain(|_, (_, exp)| *exp > now);
        }
        match m.get_mut(&index) {
            Some((last, _)) if nc <= *last => Err(NonceError::Reused),
            Some((last, _)) => {
                *last = nc;
                Ok(())
            }
            None => {
                m.insert(index, (nc, expires));
                Ok(())
            }
        }
    }
}

/// Random bits from the system (a time-based value if it has none).
pub fn random_bytes(n: usize) -> Vec<u8> {
    use std::io::Read;
    let mut buf = vec![0u8; n];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_ok()
    {
        return buf;
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = format!("{t}-{}-{:p}", std::process::id(), &buf);
    let mut out = Vec::new();
    let mut i = 0u32;
    while out.len() < n {
        out.extend_from_slice(&hmac_sha256(seed.as_bytes(), &i.to_be_bytes()));
        i += 1;
    }
    out.truncate(n);
    out
}

fn random_u32() -> u32 {
    let b = random_bytes(4);
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_on_a_virtual_clock() {
        let n = Nonces::new(b"secret");
        let nonce = n.make(1000, 30);
        assert_eq!(nonce.len(), 48);
        assert!(n.check(&nonce, 1000).is_ok());
        assert!(n.check(&nonce, 1029).is_ok());
        assert_eq!(n.check(&nonce, 1030), Err(NonceError::Expired));
        assert_eq!(n.check(&nonce, 5000), Err(NonceError::Expired));
    }

    #[test]
    fn forged_and_foreign_nonces() {
        let a = Nonces::new(b"one");
        let b = Nonces::new(b"two");
        let nonce = a.make(1000, 30);
        assert_eq!(b.check(&nonce, 1000), Err(NonceError::Invalid));
        // Pushing the expiry forward breaks the mac.
        let forged = format!("{:08x}{}", 0xffff_fff0u32, &nonce[8..]);
        assert_eq!(a.check(&forged, 1000), Err(NonceError::Invalid));
        assert_eq!(a.check("short", 1000), Err(NonceError::Invalid));
        assert_eq!(a.check(&"z".repeat(48), 1000), Err(NonceError::Invalid));
    }

    #[test]
    fn replay_by_nonce_count() {
        let n = Nonces::new(b"s");
        let nonce = n.make(100, 60);
        let (exp, idx) = n.check(&nonce, 100).unwrap();
        assert!(n.use_nc(idx, exp, 1, 100).is_ok());
        assert_eq!(n.use_nc(idx, exp, 1, 101), Err(NonceError::Reused));
        assert!(n.use_nc(idx, exp, 2, 101).is_ok());
        assert_eq!(n.use_nc(idx, exp, 1, 102), Err(NonceError::Reused));
        let other = n.make(100, 60);
        let (e2, i2) = n.check(&other, 100).unwrap();
        assert_ne!(i2, idx);
        assert!(n.use_nc(i2, e2, 1, 100).is_ok());
    }
}
