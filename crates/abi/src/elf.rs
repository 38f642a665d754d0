//! Reading a shared library's exported symbols from the file, without
//! loading it: a module that is not ours (a Kamailio build) is refused
//! before any of its code, constructors included, can run.
//!
//! Only what the check needs: 64-bit little-endian ELF, the `.dynsym`
//! section and its string table.

/// The names of the symbols a shared library defines (exports), or why
/// the file is not a 64-bit little-endian ELF shared object.
pub fn defined_symbols(data: &[u8]) -> Result<Vec<String>, String> {
    if data.len() < 64 || &data[..4] != b"\x7fELF" {
        return Err("not an ELF shared library".into());
    }
    if data[4] != 2 || data[5] != 1 {
        return Err("not a 64-bit little-endian ELF file".into());
    }
    let shoff = u64_at(data, 0x28)? as usize;
    let shentsize = u16_at(data, 0x3a)? as usize;
    let shnum = u16_at(data, 0x3c)? as usize;
    let section = |i: usize| -> Result<Section, String> {
        let b = shoff + i * shentsize;
        Ok(Section {
            kind: u32_at(data, b + 4)?,
            offset: u64_at(data, b + 0x18)? as usize,
            size: u64_at(data, b + 0x20)? as usize,
            link: u32_at(data, b + 0x28)? as usize,
            entsize: u64_at(data, b + 0x38)? as usize,
        })
    };
    const SHT_DYNSYM: u32 = 11;
    let mut out = Vec::new();
    for i in 0..shnum {
        let s = section(i)?;
        if s.kind != SHT_DYNSYM || s.entsize < 24 {
            continue;
        }
        let strtab = section(s.link)?;
        for k in 0..s.size / s.entsize {
            let e = s.offset + k * s.entsize;
            let name_off = u32_at(data, e)? as usize;
            let shndx = u16_at(data, e + 6)?;
            if shndx == 0 || name_off == 0 {
                continue; // undefined (imported) or unnamed
            }
            let start = strtab.offset + name_off;
            let bytes = data.get(start..).ok_or("truncated string table")?;
            let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
            out.push(String::from_utf8_lossy(&bytes[..end]).into_owned());
        }
    }
    Ok(out)
}

/// The version a Kamailio module was built for, as its `module_version`
/// string says (`kamailio 5.6.3`), found in the file's data.
pub fn kamailio_version(data: &[u8]) -> Option<String> {
    const NEEDLE: &[u8] = b"kamailio ";
    let mut from = 0;
    while let Some(p) = find(&data[from..], NEEDLE) {
        let start = from + p + NEEDLE.len();
        let digits: Vec<u8> = data[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit() || **b == b'.')
            .copied()
            .collect();
        if digits.iter().filter(|b| **b == b'.').count() >= 2 && digits[0].is_ascii_digit() {
            return Some(format!("kamailio {}", String::from_utf8_lossy(&digits)));
        }
        from = start;
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

struct Section {
    kind: u32,
    offset: usize,
    size: usize,
    link: usize,
    entsize: usize,
}

fn bytes_at<const N: usize>(d: &[u8], at: usize) -> Result<[u8; N], String> {
    d.get(at..at + N)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| "truncated ELF file".to_string())
}

fn u16_at(d: &[u8], at: usize) -> Result<u16, String> {
    bytes_at(d, at).map(u16::from_le_bytes)
}

fn u32_at(d: &[u8], at: usize) -> Result<u32, String> {
    bytes_at(d, at).map(u32::from_le_bytes)
}

fn u64_at(d: &[u8], at: usize) -> Result<u64, String> {
    bytes_at(d, at).map(u64::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_non_elf() {
        assert!(defined_symbols(b"hello").is_err());
        assert!(defined_symbols(&[0u8; 80]).is_err());
    }

    #[test]
    fn finds_kamailio_version() {
        let d = b"xx kamailio rocks\0kamailio 5.6.3 (x86_64/linux)\0";
        assert_eq!(kamailio_version(d).as_deref(), Some("kamailio 5.6.3"));
        assert_eq!(kamailio_version(b"nothing"), None);
    }

    #[test]
    fn reads_a_real_library() {
        // libc of the running system: any ELF with exports will do.
        let candidates = [
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
            "/lib64/libc.so.6",
        ];
        let Some(data) = candidates.iter().find_map(|p| std::fs::read(p).ok()) else {
            return;
        };
        let syms = defined_symbols(&data).expect("parse libc");
        assert!(syms.iter().any(|s| s == "malloc"));
    }
}
