//! AES-CBC as Kamailio's crypto module uses it: the key and IV derived
//! from the key text with OpenSSL's `EVP_BytesToKey` (SHA-1, 5 rounds,
//! the module's salt) for AES-256, or (without derivation) a base64 key
//! of 16 or 32 bytes with a 16-byte IV carried before the ciphertext.
//! PKCS#7 padding either way.

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use ring::digest;

/// The salt's bytes `EVP_BytesToKey` reads (OpenSSL's `PKCS5_SALT_LEN`).
pub type Salt = [u8; 8];

/// The salt made from the `salt` parameter as Kamailio makes it (each
/// byte from the character and the byte before, in C's signed `char`
/// arithmetic); `None` for an empty parameter (no salt). A parameter
/// shorter than 8 characters is refused.
pub fn salt_from_param(param: &str) -> Result<Option<Salt>, String> {
    if param.is_empty() {
        return Ok(None);
    }
    if param.len() < 8 {
        return Err("salt parameter must be at least 8 characters".into());
    }
    let mut salt = [0u8; 8];
    let mut k: i32 = 97;
    for (i, &c) in param.as_bytes().iter().take(8).enumerate() {
        let v = (c as i8 as i32) * 7 + k + k * (i as i32 + 1);
        let b = (v % 0xff) as i8;
        salt[i] = b as u8;
        k = b as i32;
    }
    Ok(Some(salt))
}

/// OpenSSL's `EVP_BytesToKey` with SHA-1 and 5 rounds, for AES-256-CBC:
/// a 32-byte key and a 16-byte IV.
pub fn bytes_to_key(data: &[u8], salt: Option<&Salt>) -> ([u8; 32], [u8; 16]) {
    let mut out = [0u8; 48];
    let mut filled = 0;
    let mut prev: Option<digest::Digest> = None;
    while filled < out.len() {
        let mut ctx = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
        if let Some(p) = &prev {
            ctx.update(p.as_ref());
        }
        ctx.update(data);
        if let Some(s) = salt {
            ctx.update(s);
        }
        let mut d = ctx.finish();
        for _ in 1..5 {
            d = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, d.as_ref());
        }
        let n = (out.len() - filled).min(d.as_ref().len());
        out[filled..filled + n].copy_from_slice(&d.as_ref()[..n]);
        filled += n;
        prev = Some(d);
    }
    let mut key = [0u8; 32];
    let mut iv = [0u8; 16];
    key.copy_from_slice(&out[..32]);
    iv.copy_from_slice(&out[32..]);
    (key, iv)
}

/// Encrypts `plain` with a 16- or 32-byte key (AES-128 or AES-256).
pub fn encrypt(key: &[u8], iv: &[u8; 16], plain: &[u8]) -> Option<Vec<u8>> {
    match key.len() {
        16 => cbc::Encryptor::<aes::Aes128>::new_from_slices(key, iv)
            .ok()
            .map(|e| e.encrypt_padded_vec_mut::<Pkcs7>(plain)),
        32 => cbc::Encryptor::<aes::Aes256>::new_from_slices(key, iv)
            .ok()
            .map(|e| e.encrypt_padded_vec_mut::<Pkcs7>(plain)),
        _ => None,
    }
}

/// Decrypts `data`; `None` when it is not whole blocks or its padding is
/// wrong (a wrong key, mostly).
pub fn decrypt(key: &[u8], iv: &[u8; 16], data: &[u8]) -> Option<Vec<u8>> {
    match key.len() {
        16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
            .ok()?
            .decrypt_padded_vec_mut::<Pkcs7>(data)
            .ok(),
        32 => cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
            .ok()?
            .decrypt_padded_vec_mut::<Pkcs7>(data)
            .ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_to_key_matches_openssl() {
        // `openssl enc -aes-256-cbc -md sha1 -iter`-less derivation is
        // one round; this is the 5-round form, checked against a
        // computation written out by hand: D1 = SHA1^5(data || salt).
        let salt = *b"12345678";
        let (key, iv) = bytes_to_key(b"secret", Some(&salt));
        let mut d1 = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, b"secret12345678");
        for _ in 1..5 {
            d1 = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, d1.as_ref());
        }
        assert_eq!(&key[..20], d1.as_ref());
        let mut cat = d1.as_ref().to_vec();
        cat.extend_from_slice(b"secret12345678");
        let mut d2 = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &cat);
        for _ in 1..5 {
            d2 = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, d2.as_ref());
        }
        assert_eq!(&key[20..], &d2.as_ref()[..12]);
        assert_eq!(&iv[..8], &d2.as_ref()[12..]);
    }

    #[test]
    fn round_trip_and_wrong_key() {
        let (key, iv) = bytes_to_key(b"k", None);
        for n in [0, 1, 15, 16, 17, 100] {
            let plain = vec![b'x'; n];
            let c = encrypt(&key, &iv, &plain).unwrap();
            assert_eq!(c.len(), (n / 16 + 1) * 16);
            assert_eq!(decrypt(&key, &iv, &c).unwrap(), plain);
        }
        let c = encrypt(&key, &iv, b"hello").unwrap();
        let (other, _) = bytes_to_key(b"other", None);
        assert_ne!(decrypt(&other, &iv, &c).as_deref(), Some(&b"hello"[..]));
        assert_eq!(decrypt(&key, &iv, &c[..15]), None);
        assert_eq!(encrypt(&key[..20], &iv, b"x"), None);
    }

    #[test]
    fn salt_is_made_as_kamailio_makes_it() {
        assert_eq!(salt_from_param("").unwrap(), None);
        assert!(salt_from_param("short").is_err());
        // First byte: ('k' * 7 + 97 + 97) % 255 = (749 + 194) % 255 = 178,
        // a negative signed char (-78) that the next byte starts from.
        let s = salt_from_param("k8hTm4aZ").unwrap().unwrap();
        assert_eq!(s[0], 178);
        let k = -78i32;
        assert_eq!(s[1], ((('8' as i32) * 7 + k + k * 2) % 255) as i8 as u8);
        // Characters past the eighth do not change the salt.
        assert_eq!(salt_from_param("k8hTm4aZmore").unwrap().unwrap(), s);
    }
}
