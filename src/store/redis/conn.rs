//! Where the Redis server is and how to talk to it: the URL of `GEMINI_ROTATOR_STATE`
//! (`redis://[user:password@]host:port[/db]`, `rediss://` for TLS through rustls, trusting
//! the default roots or the authorities of `GEMINI_ROTATOR_REDIS_CA_FILE`), the timeouts that
//! bound every call, and a small pool of connections that replaces a broken connection by
//! itself on the next call.
//!
//! The password is kept out of every `Debug`, `Display` and error: the address a message
//! names is [`Target::address`], which has none.

use crate::config::settings::{self, DefaultValue, Setting};
use crate::error::Error;
use redis::{ConnectionAddr, ConnectionInfo, ProtocolVersion, RedisConnectionInfo};
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

/// What the store does when Redis cannot answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFailure {
    /// The call fails with a state error (the default).
    Fail,
    /// The process counts on its own, held to `1 / share` of each limit (at least 1), until
    /// Redis answers again.
    Local { share: u64 },
}

/// A Redis server to keep state in, as the configuration names it.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub db: i64,
    pub user: Option<String>,
    password: Option<String>,
    /// Every Redis key the store writes starts with this.
    pub prefix: String,
    pub on_failure: OnFailure,
    /// The bound of one connect, and of one command's wait for its answer.
    pub timeout_ms: u64,
    /// With TLS: a PEM file of the certificate authorities to trust instead of the default
    /// roots (`GEMINI_ROTATOR_REDIS_CA_FILE`).
    pub ca_file: Option<std::path::PathBuf>,
    /// How the configuration names the URL (for errors).
    pub setting: String,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("address", &self.address())
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("prefix", &self.prefix)
            .field("on_failure", &self.on_failure)
            .field("timeout_ms", &self.timeout_ms)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl Target {
    /// Parses a `redis://` or `rediss://` URL; the error says what is wrong without repeating
    /// the URL (it may hold a password).
    pub fn parse(url: &str, setting: &str) -> Result<Target, Error> {
        let bad = |why: String| Error::config(setting, why);
        let (tls, rest) = if let Some(r) = url.strip_prefix("rediss://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("redis://") {
            (false, r)
        } else {
            return Err(bad("a Redis URL starts with redis:// or rediss://".into()));
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(u) => {
                let (user, pass) = u.split_once(':').unwrap_or(("", u));
                let user = decode(user).map_err(|e| bad(format!("the user name {e}")))?;
                let pass = decode(pass).map_err(|e| bad(format!("the password {e}")))?;
                (
                    (!user.is_empty()).then_some(user),
                    (!pass.is_empty()).then_some(pass),
                )
            }
        };
        let (host, port) = split_host_port(hostport).map_err(bad)?;
        let db = match path {
            "" => 0,
            p => match p.parse::<i64>() {
                Ok(n) if (0..=1_000_000).contains(&n) && p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => {
                    return Err(bad(format!(
                        "the database after the host must be a number from 0, got {p:?}"
                    )))
                }
            },
        };
        Ok(Target {
            tls,
            host,
            port,
            db,
            user,
            password,
            // The table's defaults; `config` sets what the environment gives.
            prefix: table_text(&settings::REDIS_PREFIX).into(),
            on_failure: OnFailure::Fail,
            timeout_ms: match settings::REDIS_TIMEOUT.default {
                DefaultValue::Count(n) => n,
                _ => 2000,
            },
            ca_file: None,
            setting: setting.into(),
        })
    }

    /// `redis://host:port/db` (or `rediss://`), never with credentials.
    pub fn address(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{host}:{}/{}", self.port, self.db)
    }

    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    pub(super) fn connection_info(&self) -> ConnectionInfo {
        let addr = if self.tls {
            ConnectionAddr::TcpTls {
                host: self.host.clone(),
                port: self.port,
                insecure: false,
                tls_params: None,
            }
        } else {
            ConnectionAddr::Tcp(self.host.clone(), self.port)
        };
        ConnectionInfo {
            addr,
            redis: RedisConnectionInfo {
                db: self.db,
                username: self.user.clone(),
                password: self.password.clone(),
                protocol: ProtocolVersion::RESP2,
            },
        }
    }
}

fn table_text(s: &Setting) -> &'static str {
    match s.default {
        DefaultValue::Text(t) => t,
        _ => "",
    }
}

/// Percent-decoding of a URL's user or password.
fn decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("has a % that is not followed by two hex digits")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "is not UTF-8 once decoded".to_string())
}

fn split_host_port(hostport: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or("an IPv6 host needs its closing ]")?;
        (h, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err("the Redis URL has no host".into());
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b".-_:".contains(&b))
    {
        return Err(format!("{host:?} is not a host name or address"));
    }
    let port = match port {
        None => 6379,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("the port must be 1 to 65535, got {p:?}")),
        },
    };
    Ok((host.to_string(), port))
}

/// Connections to one server, made on demand and reused; one that failed is dropped, so the
/// next call connects afresh (connections come back by themselves once Redis does).
pub(super) struct Connections {
    client: redis::Client,
    idle: Mutex<Vec<redis::Connection>>,
    timeout: Duration,
}

/// The certificate authorities of `GEMINI_ROTATOR_REDIS_CA_FILE`, read and checked.
fn trusted_roots(target: &Target) -> Result<Option<redis::TlsCertificates>, Error> {
    let setting = settings::REDIS_CA_FILE
        .env
        .unwrap_or("GEMINI_ROTATOR_REDIS_CA_FILE");
    let Some(path) = &target.ca_file else {
        return Ok(None);
    };
    let bad = |why: String| Error::config(setting, format!("{}: {why}", path.display()));
    if !target.tls {
        return Err(Error::config(
            setting,
            format!(
                "is set, but {} names {} (no TLS): use rediss://, or unset it",
                target.setting,
                target.address()
            ),
        ));
    }
    let pem = std::fs::read(path).map_err(|e| bad(format!("cannot be read ({e})")))?;
    let certificates = pem
        .windows(b"-----BEGIN CERTIFICATE-----".len())
        .filter(|w| *w == b"-----BEGIN CERTIFICATE-----")
        .count();
    if certificates == 0 {
        return Err(bad(
            "holds no certificate (a PEM file of `-----BEGIN CERTIFICATE-----` blocks)".into(),
        ));
    }
    Ok(Some(redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(pem),
    }))
}

impl Connections {
    pub fn new(target: &Target) -> Result<Connections, Error> {
        let client = match trusted_roots(target)? {
            Some(roots) => {
                redis::Client::build_with_tls(target.connection_info(), roots).map_err(|e| {
                    Error::config(
                        settings::REDIS_CA_FILE
                            .env
                            .unwrap_or("GEMINI_ROTATOR_REDIS_CA_FILE"),
                        format!(
                            "{}: not a PEM file of certificates ({e})",
                            target
                                .ca_file
                                .as_deref()
                                .unwrap_or(std::path::Path::new(""))
                                .display()
                        ),
                    )
                })?
            }
            None => redis::Client::open(target.connection_info()).map_err(|e| {
                Error::config(
                    target.setting.clone(),
                    format!("cannot use {}: {}", target.address(), e.category()),
                )
            })?,
        };
        Ok(Connections {
            client,
            idle: Mutex::new(Vec::new()),
            timeout: Duration::from_millis(target.timeout_ms),
        })
    }

    /// Runs `f` on a connection (an idle one, else a new one); the connection goes back to
    /// the pool only if `f` did not fail on it. Signals are held back meanwhile (see
    /// [`SignalsHeld`]).
    pub fn with<T>(
        &self,
        f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> redis::RedisResult<T> {
        let _held = SignalsHeld::new();
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut conn = match idle {
            Some(c) => c,
            None => self.connect()?,
        };
        let result = f(&mut conn);
        match &result {
            Err(e) if broken(e) => {}
            _ => self
                .idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(conn),
        }
        result
    }

    fn connect(&self) -> redis::RedisResult<redis::Connection> {
        let conn = self.client.get_connection_with_timeout(self.timeout)?;
        conn.set_read_timeout(Some(self.timeout))?;
        conn.set_write_timeout(Some(self.timeout))?;
        Ok(conn)
    }

    /// Drops every idle connection (after a failure, the others are likely broken too).
    pub fn reset(&self) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// Asynchronous signals blocked on this thread for one round trip, then the caller's mask
/// restored (pending signals are delivered then).
///
/// Why: the sockets have timeouts (SO_RCVTIMEO/SO_SNDTIMEO bound a call when Redis does not
/// answer), and a blocking call on such a socket is not restarted after a signal handler even
/// under SA_RESTART: it fails with EINTR. Host runtimes signal their threads all the time (Go
/// preempts goroutines with SIGURG), and an interrupted script cannot simply be sent again: it
/// may have run on the server. The faults the program itself raises (SIGSEGV, SIGBUS, SIGFPE,
/// SIGILL, SIGTRAP) stay unblocked. A round trip is bounded by the timeout, so no signal waits
/// longer than that.
struct SignalsHeld {
    old: libc::sigset_t,
}

impl SignalsHeld {
    fn new() -> SignalsHeld {
        // SAFETY: sigset_t is plain data, initialised by sigfillset before use; the mask
        // calls take valid pointers to locals.
        unsafe {
            let mut block: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut block);
            for sig in [
                libc::SIGSEGV,
                libc::SIGBUS,
                libc::SIGFPE,
                libc::SIGILL,
                libc::SIGTRAP,
            ] {
                libc::sigdelset(&mut block, sig);
            }
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, &block, &mut old);
            SignalsHeld { old }
        }
    }
}

impl Drop for SignalsHeld {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved by `new` on this same thread.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut());
        }
    }
}

/// Whether the connection an error came from can no longer be trusted: anything but an
/// answer of the server's (a script error, NOSCRIPT) leaves it mid-reply or closed.
fn broken(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_unrecoverable_error()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_gives_its_parts_and_the_address_hides_the_password() {
        let t = Target::parse("redis://al:s%40cret@127.0.0.1:7001/3", "S").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.db), ("127.0.0.1", 7001, 3));
        assert_eq!(t.user.as_deref(), Some("al"));
        assert_eq!(t.password.as_deref(), Some("s@cret"));
        assert_eq!(t.address(), "redis://127.0.0.1:7001/3");
        assert!(!format!("{t:?}").contains("cret"));
        let t = Target::parse("rediss://:pw@[::1]", "S").unwrap();
        assert_eq!(t.address(), "rediss://[::1]:6379/0");
        assert_eq!(t.user, None);
    }

    #[test]
    fn a_bad_url_names_the_setting_and_not_the_password() {
        for (url, words) in [
            ("http://h:1", "redis:// or rediss://"),
            ("redis://:pw@:1", "no host"),
            ("redis://:hunter2@h:99999", "port"),
            ("redis://:hunter2@h:1/x", "database"),
            ("redis://:hunter2@h:1/-1", "database"),
            ("redis://:hunter%zz@h:1", "password"),
        ] {
            let e = Target::parse(url, "GEMINI_ROTATOR_STATE")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("GEMINI_ROTATOR_STATE") && e.contains(words),
                "{url}: {e}"
            );
            assert!(!e.contains("hunter"), "{e}");
        }
    }
}
