//! The byte transport under a c2s session: plain TCP that may upgrade to
//! TLS (RFC 6120 §5), or TLS from the first byte (XEP-0368).

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use xmppd_sasl::ChannelBindingData;
use xmppd_xml::StreamParser;

/// Bytes read per poll. The buffer lives on the stack only while a read is
/// polled, so an idle session holds no read buffer at all.
const READ_CHUNK: usize = 4096;

/// A client connection.
pub enum Transport {
    /// Plain TCP (before STARTTLS).
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
    /// Transitional state during an upgrade, or after a failure.
    Broken,
}

impl Transport {
    /// Whether TLS is active.
    pub fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(_))
    }

    /// Accepts TLS on a fresh or STARTTLS-upgraded connection.
    pub async fn start_tls(&mut self, acceptor: &TlsAcceptor) -> io::Result<()> {
        let Transport::Plain(tcp) = std::mem::replace(self, Transport::Broken) else {
            return Err(io::Error::other("TLS is already active"));
        };
        let tls = acceptor.accept(tcp).await?;
        *self = Transport::Tls(Box::new(tls));
        Ok(())
    }

    /// Channel-binding data for SCRAM-*-PLUS (RFC 9266, RFC 5929).
    pub fn channel_binding(&self, server_end_point: &[u8]) -> ChannelBindingData {
        let Transport::Tls(tls) = self else { return ChannelBindingData::default() };
        let (_, connection) = tls.get_ref();
        let exporter = connection
            .export_keying_material([0u8; 32], b"EXPORTER-Channel-Binding", None)
            .ok()
            .map(|bytes| bytes.to_vec());
        ChannelBindingData {
            tls_exporter: exporter,
            tls_server_end_point: (!server_end_point.is_empty()).then(|| server_end_point.to_vec()),
        }
    }

    /// Reads what is available into the parser; `Ok(0)` is end of stream.
    pub async fn read_into(&mut self, parser: &mut StreamParser) -> io::Result<usize> {
        poll_fn(|cx| {
            let mut chunk = [0u8; READ_CHUNK];
            let mut buf = ReadBuf::new(&mut chunk);
            match Pin::new(&mut *self).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) => {
                    let filled = buf.filled();
                    parser.feed(filled);
                    Poll::Ready(Ok(filled.len()))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }

    /// Writes and flushes everything.
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write_all(bytes).await?;
        self.flush().await
    }
}

fn broken() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "transport is broken")
}

impl AsyncRead for Transport {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Transport::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
            Transport::Broken => Poll::Ready(Err(broken())),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Transport::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
            Transport::Broken => Poll::Ready(Err(broken())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Transport::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
            Transport::Broken => Poll::Ready(Err(broken())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Transport::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
            Transport::Broken => Poll::Ready(Ok(())),
        }
    }
}
