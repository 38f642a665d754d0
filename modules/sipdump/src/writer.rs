//! The files: `<folder>/<fprefix><date>.data` (text) and `.pcap`, a new
//! pair every `rotate` seconds, each with its `.meta` file, and the
//! clean-up of files older than `fage`.

use crate::record::{pcap_file_header, Record};
use sr_sdk::localtime;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Write text records (mode bit 1).
pub const MODE_TEXT: i64 = 1;
/// Run `event_route[sipdump:msg]` (mode bit 2).
pub const MODE_EVROUTE: i64 = 2;
/// Write pcap records (mode bit 4).
pub const MODE_PCAP: i64 = 4;

/// Where and how records are written.
#[derive(Debug)]
pub struct Writer {
    folder: PathBuf,
    fprefix: String,
    mode: i64,
    rotate: i64,
    /// When the server started (for the meta file).
    started: i64,
    text: Option<File>,
    pcap: Option<File>,
    last_rotate: i64,
}

impl Writer {
    /// A writer for `folder`/`fprefix`; nothing opened yet.
    pub fn new(folder: &str, fprefix: &str, mode: i64, rotate: i64, started: i64) -> Writer {
        Writer {
            folder: PathBuf::from(folder),
            fprefix: fprefix.to_string(),
            mode,
            rotate,
            started,
            text: None,
            pcap: None,
            last_rotate: 0,
        }
    }

    /// Opens new files when there are none or `rotate` seconds went by.
    fn rotate_at(&mut self, now: i64) -> io::Result<()> {
        let open = self.text.is_some() || self.pcap.is_some();
        if open && self.last_rotate > 0 && self.last_rotate + self.rotate > now {
            return Ok(());
        }
        self.text = None;
        self.pcap = None;
        let stamp = localtime::strftime("%Y-%m-%d--%H-%M-%S", now, false).unwrap_or_default();
        let base = format!("{}{stamp}", self.fprefix);
        let mut last = None;
        if self.mode & MODE_TEXT != 0 {
            let p = self.folder.join(format!("{base}.data"));
            self.text = Some(File::create(&p)?);
            last = Some(p);
        }
        if self.mode & MODE_PCAP != 0 {
            let p = self.folder.join(format!("{base}.pcap"));
            let mut f = File::create(&p)?;
            f.write_all(&pcap_file_header())?;
            self.pcap = Some(f);
            last = Some(p);
        }
        if let Some(p) = last {
            write_meta(&p.with_extension("meta"), self.started)?;
        }
        self.last_rotate = now;
        Ok(())
    }

    /// Writes one record (and flushes, as Kamailio does after each).
    pub fn write(&mut self, r: &Record) -> io::Result<()> {
        self.rotate_at(r.sec as i64)?;
        if let Some(f) = &mut self.text {
            let date = format!("{}\n", localtime::ctime(r.sec as i64));
            f.write_all(&r.text(std::process::id(), 0, &date))?;
            f.flush()?;
        }
        if let Some(f) = &mut self.pcap {
            if let Some(p) = r.pcap() {
                f.write_all(&p)?;
            }
            f.flush()?;
        }
        Ok(())
    }
}

/// The meta file: format version, server version, start time, and the
/// process (siprouter is one).
fn write_meta(path: &Path, started: i64) -> io::Result<()> {
    let text = format!(
        "v: 1.0\nversion: siprouter {}\nstart: {}\nnrprocs: 1\nprocess: 0 {} main process - attendant\n",
        env!("CARGO_PKG_VERSION"),
        localtime::ctime(started),
        std::process::id()
    );
    std::fs::write(path, text)
}

/// Deletes the regular files of `folder` whose name starts with
/// `fprefix` (and is longer) and that were last changed more than `fage`
/// seconds before `now`; how many went.
pub fn clean(folder: &str, fprefix: &str, fage: i64, now: i64) -> usize {
    if folder.is_empty() || fprefix.is_empty() {
        return 0;
    }
    let Ok(dir) = std::fs::read_dir(folder) else {
        return 0;
    };
    let mut n = 0;
    for e in dir.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.len() <= fprefix.len() || !name.starts_with(fprefix) {
            continue;
        }
        let Ok(md) = std::fs::symlink_metadata(e.path()) else {
            continue;
        };
        let mtime = md
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(now, |d| d.as_secs() as i64);
        if md.is_file() && now - fage > mtime && std::fs::remove_file(e.path()).is_ok() {
            n += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(sec: u64, tag: &str) -> Record {
        Record {
            tag: tag.into(),
            sec,
            usec: 0,
            proto: "udp",
            ipv6: false,
            src_ip: "127.0.0.1".into(),
            src_port: 1,
            dst_ip: "127.0.0.1".into(),
            dst_port: 2,
            data: b"x".to_vec(),
        }
    }

    #[test]
    fn files_rotate_with_their_meta() {
        let dir = std::env::temp_dir().join(format!("sipdump-w-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.to_string_lossy().to_string();
        let mut w = Writer::new(&d, "sd-", MODE_TEXT | MODE_PCAP, 10, 1_700_000_000);
        w.write(&rec(1_700_000_000, "a")).unwrap();
        w.write(&rec(1_700_000_005, "b")).unwrap();
        w.write(&rec(1_700_000_010, "c")).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        names.sort();
        assert_eq!(names.len(), 6, "{names:?}");
        let data: Vec<&String> = names.iter().filter(|n| n.ends_with(".data")).collect();
        let first = std::fs::read_to_string(dir.join(data[0])).unwrap();
        assert_eq!(first.matches("====================\n").count(), 2);
        let meta = names.iter().find(|n| n.ends_with(".meta")).unwrap();
        assert!(std::fs::read_to_string(dir.join(meta))
            .unwrap()
            .starts_with("v: 1.0\nversion: siprouter "));
        assert_eq!(clean(&d, "sd-", 0, i64::MAX / 2), 6);
        assert_eq!(clean(&d, "sd-", 0, 0), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
