//! The byte transport under a c2s session: plain TCP that may upgrade to
//! TLS (RFC 6120 §5), or TLS from the first byte (XEP-0368).
//!
//! TLS runs on rustls' *unbuffered* API so that the session owns every
//! buffer: received TLS bytes are kept only while a record is incomplete,
//! and output only until it is written. An idle session therefore holds no
//! read or write buffer at all (rustls' buffered connection keeps a 4 KiB
//! receive buffer per connection forever).

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncodeTlsData, EncryptError, UnbufferedStatus};
use rustls::{ProtocolVersion, ServerConfig};
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use xmppd_sasl::ChannelBindingData;
use xmppd_xml::StreamParser;

use crate::exporter::{self, ExporterSecrets, SuiteHash};

/// Bytes read per socket read. Lives on the stack only during the read.
const READ_CHUNK: usize = 8192;

/// A client connection.
pub enum Transport {
    /// Plain TCP (before STARTTLS).
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsTransport>),
    /// Transitional state during an upgrade, or after a failure.
    Broken,
}

impl Transport {
    /// Whether TLS is active.
    pub fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(_))
    }

    /// Accepts TLS on a fresh or STARTTLS-upgraded connection.
    pub async fn start_tls(&mut self, config: &Arc<ServerConfig>, secrets: &ExporterSecrets) -> io::Result<()> {
        let Transport::Plain(tcp) = std::mem::replace(self, Transport::Broken) else {
            return Err(io::Error::other("TLS is already active"));
        };
        let tls = TlsTransport::accept(tcp, config.clone(), secrets).await?;
        *self = Transport::Tls(Box::new(tls));
        Ok(())
    }

    /// The peer's IP address (for per-address limits), if the socket
    /// still knows it.
    pub fn peer_ip(&self) -> Option<std::net::IpAddr> {
        let tcp = match self {
            Transport::Plain(tcp) => tcp,
            Transport::Tls(tls) => &tls.tcp,
            Transport::Broken => return None,
        };
        tcp.peer_addr().ok().map(|addr| addr.ip().to_canonical())
    }

    /// Channel-binding data for SCRAM-*-PLUS (RFC 9266, RFC 5929).
    pub fn channel_binding(&self, server_end_point: &[u8]) -> ChannelBindingData {
        let Transport::Tls(tls) = self else { return ChannelBindingData::default() };
        ChannelBindingData {
            tls_exporter: tls.exporter.clone(),
            tls_server_end_point: (!server_end_point.is_empty()).then(|| server_end_point.to_vec()),
        }
    }

    /// Reads what is available into the parser; `Ok(0)` is end of stream.
    /// Cancel-safe: bytes taken from the socket are kept before any await.
    pub async fn read_into(&mut self, parser: &mut StreamParser) -> io::Result<usize> {
        match self {
            Transport::Plain(tcp) => {
                poll_fn(|cx| {
                    let mut chunk = [0u8; READ_CHUNK];
                    let mut buf = ReadBuf::new(&mut chunk);
                    match Pin::new(&mut *tcp).poll_read(cx, &mut buf) {
                        Poll::Ready(Ok(())) => {
                            parser.feed(buf.filled());
                            Poll::Ready(Ok(buf.filled().len()))
                        }
                        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                        Poll::Pending => Poll::Pending,
                    }
                })
                .await
            }
            Transport::Tls(tls) => tls.read_into(parser).await,
            Transport::Broken => Err(broken()),
        }
    }

    /// Writes everything.
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Transport::Plain(tcp) => tcp.write_all(bytes).await,
            Transport::Tls(tls) => tls.send(bytes).await,
            Transport::Broken => Err(broken()),
        }
    }

    /// Closes the connection (with a TLS close_notify when on TLS).
    pub async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(tcp) => tcp.shutdown().await,
            Transport::Tls(tls) => tls.shutdown().await,
            Transport::Broken => Ok(()),
        }
    }
}

fn broken() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "transport is broken")
}

fn tls_error(error: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

/// What one round of record processing produced.
enum Progress {
    /// Decrypted application data went to the sink (bytes).
    Plaintext(usize),
    /// TLS output is waiting in `pending_out` and must be sent now.
    Transmit,
    /// Nothing more can be done without more bytes from the peer.
    NeedData,
    /// The peer sent close_notify.
    PeerClosed,
}

/// A TLS connection driven through rustls' unbuffered API.
pub struct TlsTransport {
    tcp: TcpStream,
    conn: UnbufferedServerConnection,
    /// Received TLS bytes not processed yet (an incomplete record).
    incoming: Vec<u8>,
    /// TLS bytes to send (handshake flights, alerts, encrypted data).
    pending_out: Vec<u8>,
    /// Plaintext decrypted outside `read_into` (during the handshake or a
    /// write), handed to the parser on the next read.
    pending_plaintext: Vec<u8>,
    /// `tls-exporter` channel-binding data (TLS 1.3 only).
    exporter: Option<Vec<u8>>,
}

impl TlsTransport {
    /// Runs the server side of the handshake.
    async fn accept(tcp: TcpStream, config: Arc<ServerConfig>, secrets: &ExporterSecrets) -> io::Result<TlsTransport> {
        let conn = UnbufferedServerConnection::new(config).map_err(tls_error)?;
        let mut tls = TlsTransport {
            tcp,
            conn,
            incoming: Vec::new(),
            pending_out: Vec::new(),
            pending_plaintext: Vec::new(),
            exporter: None,
        };
        let mut client_random = None;
        loop {
            let mut early = std::mem::take(&mut tls.pending_plaintext);
            let progress = tls.process(&mut |data| early.extend_from_slice(data))?;
            tls.pending_plaintext = early;
            match progress {
                Progress::Transmit => tls.write_pending().await?,
                Progress::PeerClosed => return Err(io::ErrorKind::UnexpectedEof.into()),
                Progress::Plaintext(_) | Progress::NeedData if !tls.conn.is_handshaking() => break,
                Progress::Plaintext(_) | Progress::NeedData => {
                    if tls.fill().await? == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                    if client_random.is_none() {
                        client_random = exporter::client_random(&tls.incoming);
                    }
                }
            }
        }
        tls.write_pending().await?;
        if let Some(random) = client_random {
            let secret = secrets.take(&random);
            if tls.conn.protocol_version() == Some(ProtocolVersion::TLSv1_3) {
                let hash = match tls.conn.negotiated_cipher_suite().map(|s| s.suite()) {
                    Some(rustls::CipherSuite::TLS13_AES_256_GCM_SHA384) => SuiteHash::Sha384,
                    _ => SuiteHash::Sha256,
                };
                tls.exporter = secret.and_then(|secret| exporter::tls13_channel_binding(&secret, hash));
            }
        }
        Ok(tls)
    }

    /// Processes buffered TLS records until something needs the caller.
    fn process(&mut self, sink: &mut dyn FnMut(&[u8])) -> io::Result<Progress> {
        loop {
            let UnbufferedStatus { discard, state } = self.conn.process_tls_records(&mut self.incoming);
            let progress = step(state.map_err(tls_error)?, sink, &mut self.pending_out)?;
            self.incoming.drain(..discard.min(self.incoming.len()));
            if self.incoming.is_empty() && self.incoming.capacity() > 0 {
                self.incoming = Vec::new();
            }
            if let Some(progress) = progress {
                return Ok(progress);
            }
        }
    }

    /// Reads from the socket into `incoming`; `Ok(0)` at end of stream.
    async fn fill(&mut self) -> io::Result<usize> {
        loop {
            self.tcp.readable().await?;
            match read_available(&self.tcp, &mut self.incoming) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                result => return result,
            }
        }
    }

    /// Sends `pending_out`, keeping unsent bytes if cancelled.
    async fn write_pending(&mut self) -> io::Result<()> {
        while !self.pending_out.is_empty() {
            self.tcp.writable().await?;
            match self.tcp.try_write(&self.pending_out) {
                Ok(written) => {
                    self.pending_out.drain(..written);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        self.pending_out = Vec::new();
        Ok(())
    }

    async fn read_into(&mut self, parser: &mut StreamParser) -> io::Result<usize> {
        loop {
            if !self.pending_plaintext.is_empty() {
                let plaintext = std::mem::take(&mut self.pending_plaintext);
                parser.feed(&plaintext);
                return Ok(plaintext.len());
            }
            match self.process(&mut |data| parser.feed(data))? {
                Progress::Plaintext(0) => {}
                Progress::Plaintext(n) => return Ok(n),
                Progress::Transmit => self.write_pending().await?,
                Progress::PeerClosed => return Ok(0),
                Progress::NeedData => {
                    if self.fill().await? == 0 {
                        return Ok(0);
                    }
                }
            }
        }
    }

    async fn send(&mut self, data: &[u8]) -> io::Result<()> {
        loop {
            let UnbufferedStatus { discard, state } = self.conn.process_tls_records(&mut self.incoming);
            let done = match state.map_err(tls_error)? {
                ConnectionState::WriteTraffic(mut traffic) => {
                    let start = self.pending_out.len();
                    // Per record: header, content type, AEAD tag.
                    let mut room = data.len() + (data.len() / 16384 + 1) * 64;
                    loop {
                        self.pending_out.resize(start + room, 0);
                        match traffic.encrypt(data, &mut self.pending_out[start..]) {
                            Ok(written) => {
                                self.pending_out.truncate(start + written);
                                break;
                            }
                            Err(EncryptError::InsufficientSize(needed)) => room = needed.required_size,
                            Err(e) => {
                                self.pending_out.truncate(start);
                                return Err(io::Error::other(e.to_string()));
                            }
                        }
                    }
                    true
                }
                // Records that arrived meanwhile are decrypted (their
                // plaintext waits for the next read) and handshake messages
                // queued, as on reads.
                other => {
                    let plaintext = &mut self.pending_plaintext;
                    match step(other, &mut |data| plaintext.extend_from_slice(data), &mut self.pending_out)? {
                        Some(Progress::PeerClosed) => return Err(io::ErrorKind::BrokenPipe.into()),
                        Some(Progress::NeedData) => return Err(io::Error::other("TLS connection cannot send")),
                        _ => false,
                    }
                }
            };
            self.incoming.drain(..discard.min(self.incoming.len()));
            if done {
                break;
            }
        }
        self.write_pending().await
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        let UnbufferedStatus { discard, state } = self.conn.process_tls_records(&mut self.incoming);
        if let Ok(ConnectionState::WriteTraffic(mut traffic)) = state {
            let mut alert = [0u8; 64];
            if let Ok(written) = traffic.queue_close_notify(&mut alert) {
                self.pending_out.extend_from_slice(&alert[..written]);
            }
        }
        self.incoming.drain(..discard.min(self.incoming.len()));
        self.write_pending().await?;
        self.tcp.shutdown().await
    }
}

/// What one TLS state asks of the caller, for every state but writing:
/// decrypted records go to `sink`, handshake records to `out`. `None`:
/// process the records again.
fn step<Data>(
    state: ConnectionState<'_, '_, Data>,
    sink: &mut dyn FnMut(&[u8]),
    out: &mut Vec<u8>,
) -> io::Result<Option<Progress>> {
    Ok(match state {
        ConnectionState::ReadTraffic(mut traffic) => {
            let mut total = 0;
            while let Some(record) = traffic.next_record() {
                let record = record.map_err(tls_error)?;
                sink(record.payload);
                total += record.payload.len();
            }
            Some(Progress::Plaintext(total))
        }
        ConnectionState::EncodeTlsData(mut encode) => {
            encode_handshake(&mut encode, out)?;
            None
        }
        ConnectionState::TransmitTlsData(transmit) => {
            // The bytes are in `out`; the caller sends them before waiting
            // for anything else.
            transmit.done();
            Some(Progress::Transmit)
        }
        ConnectionState::BlockedHandshake | ConnectionState::WriteTraffic(_) => Some(Progress::NeedData),
        ConnectionState::PeerClosed | ConnectionState::Closed => Some(Progress::PeerClosed),
        _ => return Err(io::Error::other("unexpected TLS state")),
    })
}

/// Appends an encoded handshake record to `out`, growing it as rustls asks.
fn encode_handshake<Data>(encode: &mut EncodeTlsData<'_, Data>, out: &mut Vec<u8>) -> io::Result<()> {
    let start = out.len();
    let mut room = 4096;
    loop {
        out.resize(start + room, 0);
        match encode.encode(&mut out[start..]) {
            Ok(written) => {
                out.truncate(start + written);
                return Ok(());
            }
            Err(EncodeError::InsufficientSize(needed)) => room = needed.required_size,
            Err(e) => {
                out.truncate(start);
                return Err(io::Error::other(e.to_string()));
            }
        }
    }
}

/// Reads what the socket has into `into` without waiting.
fn read_available(tcp: &TcpStream, into: &mut Vec<u8>) -> io::Result<usize> {
    let mut chunk = [0u8; READ_CHUNK];
    let read = tcp.try_read(&mut chunk)?;
    into.extend_from_slice(&chunk[..read]);
    Ok(read)
}
