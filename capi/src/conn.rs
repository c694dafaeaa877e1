//! `mp_conn` (a connection: one end of a pipe, or a socket from `mp_listener_accept` /
//! `mp_client_connect`) and `mp_listener`.

use crate::deliver::{Exclusive, Pending};
use crate::handle::{buffer, bytes, get, give, handle, name, set_required, take, Wait};
use crate::status::*;
use mp::{Client, Connection, Listener, Pipe, RecvError, RecvTimeoutError, TryRecvError, WaitStrategy};
use std::ffi::{c_char, c_void};

/// A connection and the messages held back for buffers that were too small.
pub(crate) struct ConnH {
    conn: Exclusive<Connection>,
    pending: Pending,
}

/// One end of a connection (Python's `Connection`): see `mp_pipe_new`,
/// `mp_listener_accept` and `mp_client_connect`.
#[allow(non_camel_case_types)]
pub struct mp_conn {
    t: crate::handle::Tagged<ConnH>,
}
handle!(mp_conn, ConnH, 0x6d70_636f_6e6e_000c);
/// A listening socket that accepts connections (Python's `Listener`): see
/// `mp_listener_bind`.
#[allow(non_camel_case_types)]
pub struct mp_listener {
    t: crate::handle::Tagged<Listener>,
}
handle!(mp_listener, Listener, 0x6d70_6c69_736e_000d);

/// How an end waits for its peer: `MP_WAIT_ADAPTIVE` (spin briefly, then sleep: the
/// default), `MP_WAIT_PARK` (sleep at once: least CPU), `MP_WAIT_SPIN` (busy-wait: least
/// latency, burns a CPU).
pub const MP_WAIT_ADAPTIVE: i32 = 0;
/// See `MP_WAIT_ADAPTIVE`.
pub const MP_WAIT_PARK: i32 = 1;
/// See `MP_WAIT_ADAPTIVE`.
pub const MP_WAIT_SPIN: i32 = 2;

fn boxed(c: Connection) -> Box<mp_conn> {
    mp_conn::boxed(ConnH { conn: Exclusive::new(c), pending: Pending::default() })
}

/// Makes a pipe: two connected ends in shared memory (Python's `Pipe`). With `duplex` each
/// end sends and receives; without, `*a` only receives and `*b` only sends. Share the ends
/// with children by forking after this call. Never blocks.
///
/// Errors: `MP_INVALID` (a null out-pointer), `MP_OS`.
///
/// # Safety
/// `a` and `b` are null or valid for one pointer write each.
#[no_mangle]
pub unsafe extern "C" fn mp_pipe_new(duplex: bool, a: *mut *mut mp_conn, b: *mut *mut mp_conn) -> mp_status {
    call(|| {
        if a.is_null() || b.is_null() {
            return Err(Fail::invalid("null out-pointer for a pipe end"));
        }
        let (x, y) = if duplex { Pipe::duplex()? } else { Pipe::one_way()? };
        // SAFETY: the caller's contract; both checked non-null above, so neither fails.
        unsafe {
            give(a, || Ok(boxed(x)))?;
            give(b, || Ok(boxed(y)))
        }
    })
}

/// Chooses how this end waits for its peer (`MP_WAIT_ADAPTIVE`, `MP_WAIT_PARK` or
/// `MP_WAIT_SPIN`). Never blocks.
///
/// Errors: `MP_INVALID` (another value, or another thread is using the end now).
///
/// # Safety
/// `conn` is null or a handle from this library.
#[no_mangle]
pub unsafe extern "C" fn mp_conn_set_wait(conn: *const mp_conn, wait: i32) -> mp_status {
    call(|| {
        let w = match wait {
            MP_WAIT_ADAPTIVE => WaitStrategy::Adaptive,
            MP_WAIT_PARK => WaitStrategy::Park,
            MP_WAIT_SPIN => WaitStrategy::Spin,
            other => {
                return Err(Fail::invalid(format!(
                    "wait strategy {other}: expected MP_WAIT_ADAPTIVE, MP_WAIT_PARK or MP_WAIT_SPIN"
                )))
            }
        };
        // SAFETY: the caller's contract.
        unsafe { get(conn) }?.h.conn.with("connection", |c| {
            c.set_wait(w);
            Ok(())
        })
    })
}

/// Sends a copy of `len` bytes at `data` as one message, waiting up to `timeout_ns` for room.
/// One thread at a time per end.
///
/// Errors: `MP_FULL` (no room now, for a timeout of 0), `MP_TIMEOUT`, `MP_TOO_LARGE` (over
/// the connection's largest message), `MP_CLOSED` (the peer is gone or this end was closed),
/// `MP_INVALID` (a receive-only end; another thread is using it now), `MP_CORRUPT`, `MP_OS`.
///
/// # Safety
/// `conn` is null or a handle from this library; `data` is null or valid for `len` reads.
#[no_mangle]
pub unsafe extern "C" fn mp_conn_send(
    conn: *const mp_conn,
    data: *const c_void,
    len: usize,
    timeout_ns: u64,
) -> mp_status {
    call(|| {
        // SAFETY: the caller's contract.
        let h = &unsafe { get(conn) }?.h;
        // SAFETY: the caller's contract.
        let m = unsafe { bytes(data, len) }?;
        h.conn.with("connection", |c| {
            match Wait::from_ns(timeout_ns) {
                Wait::Now => c.try_send_bytes(m)?,
                Wait::For(d) => c.send_bytes_timeout(m, d)?,
                Wait::Forever => c.send_bytes(m)?,
            }
            Ok(())
        })
    })
}

/// A receive's outcome: the length, the message that did not fit, or a failure.
enum Got {
    Len(usize),
    TooShort(Vec<u8>),
    Failed(Fail),
}

macro_rules! got {
    ($c:expr, $r:expr, $e:ident) => {
        match $r {
            Ok(n) => Got::Len(n),
            Err($e::BufferTooShort(m)) => Got::TooShort(m),
            Err($e::FdPending) => {
                // A Rust peer sent a descriptor (`send_fd`), which C cannot receive: it is
                // taken and closed so that the messages after it can be read.
                let _ = $c.try_recv_fd();
                Got::Failed(Fail::new(
                    MP_MISMATCH,
                    "the next message was a file descriptor (a Rust peer's send_fd): C receives bytes only, so it was closed",
                ))
            }
            Err(e) => Got::Failed(e.into()),
        }
    };
}

/// Receives the next message into `buf` (`cap` bytes), waiting up to `timeout_ns` for one;
/// `*len` gets its length. One thread at a time per end.
///
/// Errors: `MP_EMPTY` (none now, for a timeout of 0), `MP_TIMEOUT`, `MP_TOO_LARGE` (longer
/// than `cap`: `*len` says how long, and it is kept for the next receive), `MP_CLOSED` (the
/// peer is gone and nothing is left), `MP_MISMATCH` (a Rust peer sent a file descriptor,
/// which is closed and skipped), `MP_INVALID` (a send-only end; another thread is using it
/// now), `MP_CORRUPT`, `MP_OS`.
///
/// # Safety
/// `conn` is null or a handle from this library; `buf` is null or valid for `cap` writes;
/// `len` is null or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn mp_conn_recv(
    conn: *const mp_conn,
    buf: *mut c_void,
    cap: usize,
    len: *mut usize,
    timeout_ns: u64,
) -> mp_status {
    call(|| {
        // SAFETY: the caller's contract.
        let h = &unsafe { get(conn) }?.h;
        // SAFETY: the caller's contract.
        if let Some(done) = unsafe { h.pending.begin(buf, cap, len) } {
            return done;
        }
        // SAFETY: the caller's contract.
        let out = unsafe { buffer(buf, cap) }?;
        let got = h.conn.with("connection", |c| {
            Ok(match Wait::from_ns(timeout_ns) {
                Wait::Now => got!(c, c.try_recv_bytes_into(out, 0), TryRecvError),
                Wait::For(d) => got!(c, c.recv_bytes_into_timeout(out, 0, d), RecvTimeoutError),
                Wait::Forever => got!(c, c.recv_bytes_into(out, 0), RecvError),
            })
        })?;
        match got {
            // SAFETY: the caller's contract.
            Got::Len(n) => unsafe { set_required(len, n, "the message length") },
            // SAFETY: the caller's contract (`deliver` keeps it: it does not fit).
            Got::TooShort(m) => unsafe { h.pending.deliver(&m, buf, cap, len) },
            Got::Failed(f) => Err(f),
        }
    })
}

/// Waits up to `timeout_ns` until a message can be received (or the peer is gone: then the
/// receive says `MP_CLOSED`).
///
/// Errors: `MP_EMPTY` (nothing now, for a timeout of 0), `MP_TIMEOUT`, `MP_CLOSED` (this end
/// was closed), `MP_INVALID` (a send-only end), `MP_CORRUPT`, `MP_OS`.
///
/// # Safety
/// `conn` is null or a handle from this library.
#[no_mangle]
pub unsafe extern "C" fn mp_conn_poll(conn: *const mp_conn, timeout_ns: u64) -> mp_status {
    call(|| {
        // SAFETY: the caller's contract.
        let h = &unsafe { get(conn) }?.h;
        if h.pending.any() {
            return Ok(());
        }
        h.conn.with("connection", |c| {
            match Wait::from_ns(timeout_ns) {
                Wait::Now => c.try_poll()?,
                Wait::For(d) => c.poll_timeout(d)?,
                Wait::Forever => c.poll_timeout(std::time::Duration::MAX)?,
            }
            Ok(())
        })
    })
}

/// Closes this end and frees the handle (null: nothing); the peer's receives then end with
/// `MP_CLOSED` once they have taken what was sent. A message kept for this end after
/// `MP_TOO_LARGE` is dropped with it. Never blocks.
///
/// Errors: `MP_INVALID` (not a live connection handle, or another thread is inside a call on
/// it: nothing is freed then).
///
/// # Safety
/// `conn` is null or a handle from this library, not used by any thread after this call.
#[no_mangle]
pub unsafe extern "C" fn mp_conn_free(conn: *mut mp_conn) -> mp_status {
    // SAFETY: the caller's contract.
    call(|| unsafe { crate::deliver::free_exclusive(conn, |h| &h.conn, "connection") })
}

/// The authentication key: `len` bytes at `key`, or none when `key` is null.
///
/// # Safety
/// `key` is null or valid for `len` reads.
unsafe fn authkey<'a>(key: *const u8, len: usize) -> Res<Option<&'a [u8]>> {
    if key.is_null() {
        if len != 0 {
            return Err(Fail::invalid(format!("a null key with a length of {len}: pass NULL and 0 for no key")));
        }
        return Ok(None);
    }
    // SAFETY: the caller's contract.
    unsafe { bytes(key.cast(), len) }.map(Some)
}

/// Listens at `address`: `unix:PATH`, `abstract:NAME` (Linux's abstract socket names) or
/// `tcp:HOST:PORT` (port 0: any free port; read it back with `mp_listener_address`). With a
/// key (`authkey`, `authkey_len` bytes; null for none), every client must prove it holds the
/// same key (Python's HMAC challenge). Never blocks.
///
/// Errors: `MP_INVALID` (a malformed address, a unix path over 107 bytes, a null key with a
/// nonzero length), `MP_EXISTS` (the address is in use: by a live listener, or, for a unix
/// path, by a file that is not a socket, which is left alone), `MP_OS`.
///
/// # Safety
/// `address` is a NUL-terminated string; `authkey` is null or valid for `authkey_len` reads;
/// `out` is null or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn mp_listener_bind(
    address: *const c_char,
    authkey: *const u8,
    authkey_len: usize,
    out: *mut *mut mp_listener,
) -> mp_status {
    call(|| {
        // SAFETY: the caller's contract.
        let (a, k) = unsafe { (name(address)?, self::authkey(authkey, authkey_len)?) };
        // SAFETY: the caller's contract.
        unsafe { give(out, || Ok(mp_listener::boxed(Listener::bind(a, k)?))) }
    })
}

/// Writes the address the listener is bound to, NUL-terminated, into `buf` (`cap` bytes);
/// `*len` gets its length without the NUL. Never blocks.
///
/// Errors: `MP_TOO_LARGE` (`cap` is less than `*len` + 1), `MP_INVALID`.
///
/// # Safety
/// `l` is null or a handle from this library; `buf` is null or valid for `cap` writes; `len`
/// is null or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn mp_listener_address(
    l: *const mp_listener,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> mp_status {
    call(|| {
        // SAFETY: the caller's contract.
        let text = unsafe { get(l) }?.h.address().to_string();
        // SAFETY: the caller's contract.
        unsafe { set_required(len, text.len(), "the address length") }?;
        if text.len() >= cap {
            return Err(Fail::new(
                MP_TOO_LARGE,
                format!("the address takes {} bytes with its NUL, the buffer {cap}", text.len() + 1),
            ));
        }
        // SAFETY: the caller's contract.
        let out = unsafe { buffer(buf.cast(), cap) }?;
        out[..text.len()].copy_from_slice(text.as_bytes());
        out[text.len()] = 0;
        Ok(())
    })
}

/// Accepts the next client, waiting up to `timeout_ns` for one; the handshake (and the key
/// check) is bounded by the same time.
///
/// Errors: `MP_EMPTY` (no client waiting now, for a timeout of 0), `MP_TIMEOUT`,
/// `MP_MISMATCH` (the client failed the key check or spoke another protocol), `MP_OS`.
///
/// # Safety
/// `l` is null or a handle from this library; `out` is null or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn mp_listener_accept(
    l: *const mp_listener,
    timeout_ns: u64,
    out: *mut *mut mp_conn,
) -> mp_status {
    call(|| {
        // Made only once `out` is known good (`give` checks it first): no object appears
        // and vanishes, no client is accepted and dropped, for a null `out`.
        let make = || {
            // SAFETY: the caller's contract.
            let l = &unsafe { get(l) }?.h;
            let c = match Wait::from_ns(timeout_ns) {
                Wait::Now => l.try_accept()?,
                Wait::For(d) => l.accept_timeout(d)?,
                Wait::Forever => l.accept()?,
            };
            Ok(boxed(c))
        };
        // SAFETY: the caller's contract.
        unsafe { give(out, make) }
    })
}

/// Stops listening and frees the handle (null: nothing); a `unix:` socket file is removed.
/// Connections already accepted keep working. Never blocks.
///
/// Errors: `MP_INVALID` (not a live listener handle).
///
/// # Safety
/// `l` is null or a handle from this library, not used by any thread after this call.
#[no_mangle]
pub unsafe extern "C" fn mp_listener_free(l: *mut mp_listener) -> mp_status {
    // SAFETY: the caller's contract.
    call(|| unsafe { take(l) }.map(drop))
}

/// Connects to a listener at `address` (see `mp_listener_bind`), with the listener's key
/// (null: none), waiting up to `timeout_ns` for the connection and its handshake.
/// `MP_FOREVER` waits as Rust's `Client::connect` does: at most 10 s
/// (`HANDSHAKE_TIMEOUT`) for the connection and its handshake, so that a listener that
/// accepts and stays silent cannot hold the caller for ever (`MP_TIMEOUT` then). A TCP
/// address given by host name is looked up first, by the system resolver, which
/// `timeout_ns` does not bound.
///
/// Errors: `MP_NOT_FOUND` (nobody listens there), `MP_TIMEOUT`, `MP_MISMATCH` (the key or
/// the protocol differs), `MP_INVALID` (a malformed address), `MP_OS`.
///
/// # Safety
/// `address` is a NUL-terminated string; `authkey` is null or valid for `authkey_len` reads;
/// `out` is null or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn mp_client_connect(
    address: *const c_char,
    authkey: *const u8,
    authkey_len: usize,
    timeout_ns: u64,
    out: *mut *mut mp_conn,
) -> mp_status {
    call(|| {
        // Made only once `out` is known good (`give` checks it first): no object appears
        // and vanishes, no client is accepted and dropped, for a null `out`.
        let make = || {
            // SAFETY: the caller's contract.
            let (a, k) = unsafe { (name(address)?, self::authkey(authkey, authkey_len)?) };
            let c = match Wait::from_ns(timeout_ns) {
                Wait::Forever => Client::connect(a, k)?,
                w => Client::connect_timeout(a, k, w.duration())?,
            };
            Ok(boxed(c))
        };
        // SAFETY: the caller's contract.
        unsafe { give(out, make) }
    })
}
