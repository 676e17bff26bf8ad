//! Login: `/login =name= =password=` since RouterOS 6.43. Older routers
//! answer that with `!done =ret=<challenge>`, and then want
//! `=response=00<md5(0x00 + password + challenge)>`.

use md5::{Digest, Md5};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::ClientError;
use crate::proto::{Command, Decoder, Reply, ReplyKind};

/// The pre-6.43 challenge answer: `00` followed by the hex MD5 of a zero
/// byte, the password and the hex-decoded challenge.
pub fn challenge_response(password: &[u8], challenge_hex: &[u8]) -> Result<String, ClientError> {
    let challenge = crate::encoding::unhex(challenge_hex).ok_or_else(|| {
        ClientError::LoginFailed("router sent a malformed login challenge".into())
    })?;
    let mut md5 = Md5::new();
    md5.update([0u8]);
    md5.update(password);
    md5.update(&challenge);
    Ok(format!("00{}", crate::encoding::hex(&md5.finalize())))
}

/// Runs the login exchange on a fresh stream, before the multiplexing
/// driver takes it over (login replies are untagged).
pub(crate) async fn login<S>(
    stream: &mut S,
    decoder: &mut Decoder,
    user: &str,
    password: &str,
) -> Result<(), ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let plain = Command::new("/login")
        .attr("name", user)
        .attr("password", password);
    let done = exchange(stream, decoder, &plain, user).await?;
    let Some(challenge) = done.attrs.get("ret") else {
        return Ok(());
    };
    log::debug!("router asked for the pre-6.43 challenge login");
    let response = challenge_response(password.as_bytes(), challenge)?;
    let legacy = Command::new("/login")
        .attr("name", user)
        .attr("response", response);
    exchange(stream, decoder, &legacy, user).await.map(|_| ())
}

/// Sends one command and reads replies up to its `!done`.
async fn exchange<S>(
    stream: &mut S,
    decoder: &mut Decoder,
    cmd: &Command,
    user: &str,
) -> Result<Reply, ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut out = Vec::new();
    cmd.encode(None, &mut out)?;
    stream.write_all(&out).await.map_err(lost)?;
    stream.flush().await.map_err(lost)?;
    let mut trap: Option<String> = None;
    loop {
        let reply = read_reply(stream, decoder).await?;
        match reply.kind {
            ReplyKind::Trap => {
                let msg = String::from_utf8_lossy(reply.message().unwrap_or(b"login failed"))
                    .into_owned();
                trap.get_or_insert(msg);
            }
            ReplyKind::Fatal => {
                let reason =
                    String::from_utf8_lossy(reply.fatal_reason().unwrap_or(b"")).into_owned();
                return Err(ClientError::Fatal(reason));
            }
            ReplyKind::Done => {
                return match trap {
                    None => Ok(reply),
                    Some(message)
                        if message.contains("invalid user name or password")
                            || message.contains("cannot log in") =>
                    {
                        Err(ClientError::BadCredentials {
                            user: user.to_string(),
                            message,
                        })
                    }
                    Some(message) => Err(ClientError::LoginFailed(message)),
                };
            }
            ReplyKind::Re | ReplyKind::Empty => {}
        }
    }
}

pub(crate) async fn read_reply<S>(
    stream: &mut S,
    decoder: &mut Decoder,
) -> Result<Reply, ClientError>
where
    S: AsyncRead + Unpin,
{
    let mut buf = [0u8; 4096];
    loop {
        if let Some(sentence) = decoder.next_sentence()? {
            return Ok(Reply::parse(sentence)?);
        }
        let n = stream.read(&mut buf).await.map_err(lost)?;
        if n == 0 {
            return Err(ClientError::ConnectionLost(
                "router closed the connection".into(),
            ));
        }
        decoder.feed(&buf[..n]);
    }
}

fn lost(err: std::io::Error) -> ClientError {
    ClientError::ConnectionLost(crate::cause::Cause::of(err))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vector computed independently: md5(00 "secret" 0x0123…ef) with
    /// python's hashlib.
    #[test]
    fn challenge_response_vector() {
        let r = challenge_response(b"secret", b"0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(r.len(), 34);
        assert!(r.starts_with("00"));
        assert_eq!(r, format!("00{}", PY_VECTOR));
    }

    const PY_VECTOR: &str = include_str!("testdata/md5_vector.txt");

    #[test]
    fn malformed_challenge_is_an_error() {
        assert!(challenge_response(b"x", b"abc").is_err());
        assert!(challenge_response(b"x", b"zz").is_err());
    }
}
