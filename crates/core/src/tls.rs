//! TLS: Kamailio's `tls` module as far as siprouter has it. Its parameters
//! (`certificate`, `private_key`, `ca_list`, `verify_certificate`,
//! `require_certificate`, `tls_method`, `config`), its `tls.cfg` file
//! (the `[server:default]` and `[client:default]` profiles), and the
//! rustls configurations built from them for `listen=tls:` sockets and
//! for connections siprouter opens to TLS destinations.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use sr_sdk::exports::{ModuleDef, ParamKind, ParamValue};
use sr_sdk::lm_warn;
use std::sync::{Arc, Mutex};

/// One side's settings (Kamailio's TLS "domain" profile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsProfile {
    /// PEM file with our certificate chain.
    pub certificate: String,
    /// PEM file with our private key.
    pub private_key: String,
    /// PEM file with the authorities a peer's certificate is checked
    /// against.
    pub ca_list: String,
    /// Check the peer's certificate (Kamailio's default: no).
    pub verify_certificate: bool,
    /// Server side: refuse clients without a certificate (default: no).
    pub require_certificate: bool,
    /// `tls_method` / `method`: `TLSv1.2+` (the default here), `TLSv1.3`,
    /// `TLSv1.2`; older names (`SSLv23`, `TLSv1+`, `TLSv1.1+`) mean
    /// every version rustls has (1.2 and 1.3).
    pub method: String,
}

impl Default for TlsProfile {
    fn default() -> Self {
        TlsProfile {
            certificate: String::new(),
            private_key: String::new(),
            ca_list: String::new(),
            verify_certificate: false,
            require_certificate: false,
            method: "TLSv1.2+".to_string(),
        }
    }
}

/// The `tls` module's state: module parameters apply to both profiles,
/// then `tls.cfg` (parameter `config`) overrides what it names.
#[derive(Debug, Default, Clone)]
pub struct TlsParams {
    /// Set by `modparam`, for both sides.
    pub base: TlsProfile,
    /// `config`: the `tls.cfg` path.
    pub config: String,
}

/// The configurations the transport uses.
#[derive(Debug, Clone)]
pub struct TlsConfigs {
    /// For `listen=tls:` sockets; `None` without a certificate (then
    /// only outgoing TLS connections can be made).
    pub server: Option<Arc<ServerConfig>>,
    /// For connections siprouter opens.
    pub client: Arc<ClientConfig>,
    /// The settings the server side was built from.
    pub server_profile: TlsProfile,
    /// The settings the client side was built from.
    pub client_profile: TlsProfile,
    /// Our certificate (DER) on TLS sockets.
    pub server_cert: Option<Vec<u8>>,
    /// Our certificate (DER) on connections we open, if we present one.
    pub client_cert: Option<Vec<u8>>,
}

impl TlsConfigs {
    /// Our certificate on a connection we accepted (`accepted`) or opened.
    pub fn my_cert(&self, accepted: bool) -> Option<&[u8]> {
        if accepted {
            self.server_cert.as_deref()
        } else {
            self.client_cert.as_deref()
        }
    }

    /// Whether a peer's certificate is checked against `ca_list` on a
    /// connection we accepted (`accepted`) or opened.
    pub fn verifies(&self, accepted: bool) -> bool {
        let p = if accepted {
            &self.server_profile
        } else {
            &self.client_profile
        };
        p.verify_certificate || (accepted && p.require_certificate)
    }
}

/// Module parameters that are accepted and have no effect (OpenSSL
/// tuning that rustls decides itself).
const NO_EFFECT: &[&str] = &[
    "cipher_list",
    "server_name",
    "connection_timeout",
    "tls_log",
    "tls_debug",
    "session_cache",
    "session_id",
    "renegotiation",
    "send_close_notify",
    "con_ct_wq_max",
    "ct_wq_max",
    "ct_wq_blk_size",
    "low_mem_threshold1",
    "low_mem_threshold2",
    "tls_force_run",
    "crl",
    "verify_depth",
    "ssl_release_buffers",
    "ssl_freelist_max_len",
    "ssl_max_send_fragment",
    "ssl_read_ahead",
    "init_mode",
    "engine",
    "engine_config",
    "engine_algorithms",
    "xavp_cfg",
    "event_callback",
    "rand_engine",
    "ca_path",
];

fn flag(v: &ParamValue) -> Result<bool, String> {
    match v {
        ParamValue::Int(i) => Ok(*i != 0),
        ParamValue::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
            "1" | "yes" | "on" | "true" => Ok(true),
            "0" | "no" | "off" | "false" => Ok(false),
            other => Err(format!("'{other}' is not yes or no")),
        },
    }
}

fn text(v: &ParamValue) -> String {
    match v {
        ParamValue::Int(i) => i.to_string(),
        ParamValue::Str(s) => s.clone(),
    }
}

/// The `tls` module, its parameters kept in `params`; `rt` is the
/// runtime its RPC methods look at.
pub fn module(
    params: Arc<Mutex<TlsParams>>,
    rt: std::sync::Weak<crate::runtime::Runtime>,
) -> ModuleDef {
    let rpc_params = params.clone();
    let set = move |f: fn(&mut TlsParams, &ParamValue) -> Result<(), String>| {
        let p = params.clone();
        move |v: ParamValue| {
            let mut g = p
                .lock()
                .map_err(|_| "tls parameters lock poisoned".to_string())?;
            f(&mut g, &v)
        }
    };
    let mut def = ModuleDef::new("tls")
        .param(
            "certificate",
            ParamKind::Str,
            set(|p, v| {
                p.base.certificate = text(v);
                Ok(())
            }),
        )
        .param(
            "private_key",
            ParamKind::Str,
            set(|p, v| {
                p.base.private_key = text(v);
                Ok(())
            }),
        )
        .param(
            "ca_list",
            ParamKind::Str,
            set(|p, v| {
                p.base.ca_list = text(v);
                Ok(())
            }),
        )
        .param(
            "verify_certificate",
            ParamKind::Any,
            set(|p, v| {
                p.base.verify_certificate = flag(v)?;
                Ok(())
            }),
        )
        .param(
            "require_certificate",
            ParamKind::Any,
            set(|p, v| {
                p.base.require_certificate = flag(v)?;
                Ok(())
            }),
        )
        .param(
            "tls_method",
            ParamKind::Str,
            set(|p, v| {
                let m = text(v);
                versions(&m)?;
                p.base.method = m;
                Ok(())
            }),
        )
        .param(
            "config",
            ParamKind::Str,
            set(|p, v| {
                p.config = text(v);
                Ok(())
            }),
        );
    for name in NO_EFFECT {
        def = def.param(name, ParamKind::Any, |_| Ok(()));
    }
    crate::tls_rpc::add(crate::tls_pv::add(def), rt, rpc_params)
}

/// The TLS versions a method name allows.
fn versions(method: &str) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
    let both = vec![&rustls::version::TLS13, &rustls::version::TLS12];
    match method.trim().to_ascii_uppercase().as_str() {
        "" | "TLSV1.2+" | "SSLV23" | "TLSV1+" | "TLSV1.1+" | "TLSV1" | "TLSV1.1" => Ok(both),
        "TLSV1.3" | "TLSV1.3+" => Ok(vec![&rustls::version::TLS13]),
        "TLSV1.2" => Ok(vec![&rustls::version::TLS12]),
        other => Err(format!(
            "tls method '{other}' is not known (TLSv1.2+, TLSv1.2, TLSv1.3)"
        )),
    }
}

/// Reads `tls.cfg`: `[server:default]` and `[client:default]` (also
/// `:any`) sections of `key = value` lines, `#` comments. Other profiles
/// (per address or server name) are not supported: a warning, and they
/// are skipped.
pub fn parse_tls_cfg(text: &str, base: &TlsProfile) -> Result<(TlsProfile, TlsProfile), String> {
    let (mut server, mut client) = (base.clone(), base.clone());
    let mut current: Option<&mut TlsProfile> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if let Some(sec) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let sec = sec.trim().to_ascii_lowercase();
            current = match sec.as_str() {
                "server:default" | "server:any" => Some(&mut server),
                "client:default" | "client:any" => Some(&mut client),
                other => {
                    lm_warn!("tls.cfg line {}: profile [{other}] is not supported (only server:default and client:default); skipped", n + 1);
                    None
                }
            };
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(format!("tls.cfg line {}: expected key = value", n + 1));
        };
        let Some(p) = current.as_deref_mut() else {
            continue;
        };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
        let at = |e: String| format!("tls.cfg line {}: {e}", n + 1);
        match k.as_str() {
            "certificate" => p.certificate = v,
            "private_key" => p.private_key = v,
            "ca_list" => p.ca_list = v,
            "method" | "tls_method" => {
                versions(&v).map_err(at)?;
                p.method = v;
            }
            "verify_certificate" => p.verify_certificate = flag(&ParamValue::Str(v)).map_err(at)?,
            "require_certificate" => {
                p.require_certificate = flag(&ParamValue::Str(v)).map_err(at)?
            }
            _ => {}
        }
    }
    Ok((server, client))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

fn certs(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let v: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("certificate '{path}': {e}"))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("certificate '{path}': {e}"))?;
    if v.is_empty() {
        return Err(format!("certificate '{path}': no certificate in the file"));
    }
    Ok(v)
}

fn key(path: &str) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| format!("private_key '{path}': {e}"))
}

fn roots(path: &str) -> Result<RootCertStore, String> {
    let mut r = RootCertStore::empty();
    for c in certs(path)? {
        r.add(c).map_err(|e| format!("ca_list '{path}': {e}"))?;
    }
    Ok(r)
}

/// Builds both configurations; any missing or unreadable file is an
/// error naming it.
pub fn build(params: &TlsParams) -> Result<TlsConfigs, String> {
    let (server, client) = if params.config.is_empty() {
        (params.base.clone(), params.base.clone())
    } else {
        let text = std::fs::read_to_string(&params.config)
            .map_err(|e| format!("tls config '{}': {e}", params.config))?;
        parse_tls_cfg(&text, &params.base)?
    };
    let first = |p: &TlsProfile| -> Result<Option<Vec<u8>>, String> {
        if p.certificate.is_empty() || p.private_key.is_empty() {
            return Ok(None);
        }
        Ok(certs(&p.certificate)?.first().map(|c| c.as_ref().to_vec()))
    };
    let server_cfg = if server.certificate.is_empty() && server.private_key.is_empty() {
        None
    } else {
        Some(Arc::new(server_config(&server)?))
    };
    Ok(TlsConfigs {
        server: server_cfg,
        client: Arc::new(client_config(&client)?),
        server_cert: first(&server)?,
        client_cert: first(&client)?,
        server_profile: server,
        client_profile: client,
    })
}

fn server_config(p: &TlsProfile) -> Result<ServerConfig, String> {
    if p.certificate.is_empty() || p.private_key.is_empty() {
        return Err("TLS sockets need the tls module's certificate and private_key".to_string());
    }
    let b = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&versions(&p.method)?)
        .map_err(|e| e.to_string())?;
    let b = if p.verify_certificate || p.require_certificate {
        if p.ca_list.is_empty() {
            return Err("verify_certificate / require_certificate need ca_list".to_string());
        }
        let v =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots(&p.ca_list)?), provider());
        let v = if p.require_certificate {
            v
        } else {
            v.allow_unauthenticated()
        };
        b.with_client_cert_verifier(v.build().map_err(|e| e.to_string())?)
    } else {
        b.with_no_client_auth()
    };
    b.with_single_cert(certs(&p.certificate)?, key(&p.private_key)?)
        .map_err(|e| format!("certificate and private_key: {e}"))
}

fn client_config(p: &TlsProfile) -> Result<ClientConfig, String> {
    let b = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&versions(&p.method)?)
        .map_err(|e| e.to_string())?;
    let b = if p.verify_certificate {
        if p.ca_list.is_empty() {
            return Err("verify_certificate needs ca_list".to_string());
        }
        b.with_root_certificates(roots(&p.ca_list)?)
    } else {
        b.dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServer(provider())))
    };
    if p.certificate.is_empty() || p.private_key.is_empty() {
        Ok(b.with_no_client_auth())
    } else {
        b.with_client_auth_cert(certs(&p.certificate)?, key(&p.private_key)?)
            .map_err(|e| format!("client certificate: {e}"))
    }
}

/// `verify_certificate = no` on the client side (Kamailio's default): any
/// server certificate is taken, but the handshake's signatures are still
/// checked (the connection is encrypted to whoever holds that key).
#[derive(Debug)]
struct AnyServer(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_cfg_profiles_override_the_module_parameters() {
        let base = TlsProfile {
            certificate: "/base.pem".into(),
            private_key: "/base.key".into(),
            ..TlsProfile::default()
        };
        let (s, c) = parse_tls_cfg(
            "# comment\n[server:default]\nmethod = TLSv1.3\nverify_certificate = yes\nrequire_certificate = yes\nca_list = /ca.pem\n\n[client:default]\nverify_certificate = no\ncertificate = /client.pem # trailing comment\n[server:10.0.0.1:5061]\ncertificate = /other.pem\n",
            &base,
        )
        .unwrap();
        assert_eq!(s.method, "TLSv1.3");
        assert!(s.verify_certificate && s.require_certificate);
        assert_eq!(s.ca_list, "/ca.pem");
        assert_eq!(
            s.certificate, "/base.pem",
            "the unsupported profile is skipped"
        );
        assert_eq!(c.certificate, "/client.pem");
        assert!(!c.verify_certificate);
        assert_eq!(c.private_key, "/base.key");
        let e = parse_tls_cfg("[server:default]\nmethod = SSLv2\n", &base).unwrap_err();
        assert!(e.starts_with("tls.cfg line 2:"), "{e}");
        let e = parse_tls_cfg("[server:default]\nnonsense\n", &base).unwrap_err();
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn missing_files_are_named() {
        // Without a certificate there is no server side, only a client.
        let c = build(&TlsParams::default()).unwrap();
        assert!(c.server.is_none());
        let mut p = TlsParams::default();
        p.base.certificate = "/nonexistent/cert.pem".into();
        let e = build(&p).unwrap_err();
        assert!(e.contains("certificate and private_key"), "{e}");
        let mut p = TlsParams::default();
        p.base.certificate = "/nonexistent/cert.pem".into();
        p.base.private_key = "/nonexistent/key.pem".into();
        let e = build(&p).unwrap_err();
        assert!(e.contains("/nonexistent/cert.pem"), "{e}");
        let p = TlsParams {
            config: "/nonexistent/tls.cfg".into(),
            ..TlsParams::default()
        };
        assert!(build(&p).unwrap_err().contains("/nonexistent/tls.cfg"));
    }

    #[test]
    fn methods() {
        assert_eq!(versions("TLSv1.2+").unwrap().len(), 2);
        assert_eq!(versions("tlsv1.3").unwrap().len(), 1);
        assert!(versions("SSLv3").is_err());
    }
}
