//! The byte layout of `events.log`.
//!
//! ```text
//! file   = header record*
//! header = "INCDLOG\n" | format version u32 LE | crc32 u32 LE of the 12 bytes before it
//! record = kind u8 | body_len u32 LE | crc32 u32 LE of (kind, body_len, body) | body
//! event body       = incident [u8; 16] | version u64 LE | payload
//! idempotency body = key_len u16 LE | key (UTF-8) | response
//! ```
//!
//! The kinds are unlikely byte values (not 0x00, not 0xFF), so a zero-filled
//! or erased region never starts a record; the CRC (crc32, IEEE) covers the
//! kind and length as well as the body, so a torn or garbled record — in
//! its header or its body — is rejected as a whole. Recovery stops at the first
//! record that is incomplete or fails its CRC.

use crate::{IncidentKey, Record, StoreError};

pub(crate) const FILE_MAGIC: [u8; 8] = *b"INCDLOG\n";
pub(crate) const FORMAT_VERSION: u32 = 1;
pub(crate) const FILE_HEADER_LEN: u64 = 16;

pub(crate) const RECORD_HEADER_LEN: usize = 9;
pub(crate) const KIND_EVENT: u8 = 0xE5;
pub(crate) const KIND_IDEMPOTENCY: u8 = 0x1D;
/// Largest record body; also bounds what recovery believes of a length field.
pub(crate) const MAX_BODY: usize = 64 << 20;
/// incident (16) + version (8).
pub(crate) const EVENT_FIXED: usize = 24;
const MAX_KEY: usize = u16::MAX as usize;

pub(crate) fn file_header() -> [u8; FILE_HEADER_LEN as usize] {
    let mut h = [0u8; FILE_HEADER_LEN as usize];
    h[..8].copy_from_slice(&FILE_MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    let crc = crc32fast::hash(&h[..12]);
    h[12..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Checks a file header; the error says what is wrong with it.
pub(crate) fn check_file_header(h: &[u8]) -> Result<(), String> {
    if h.len() < FILE_HEADER_LEN as usize || h[..8] != FILE_MAGIC {
        return Err("not an incidentd event log (bad magic)".into());
    }
    let crc = u32::from_le_bytes([h[12], h[13], h[14], h[15]]);
    if crc32fast::hash(&h[..12]) != crc {
        return Err("log file header fails its checksum".into());
    }
    let version = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    if version != FORMAT_VERSION {
        return Err(format!(
            "log format version {version} is not supported (this build reads {FORMAT_VERSION})"
        ));
    }
    Ok(())
}

/// Rejects records the format cannot hold, before they are queued.
pub(crate) fn validate(rec: &Record) -> Result<(), StoreError> {
    match rec {
        Record::Event { payload, .. } => {
            let max = MAX_BODY - EVENT_FIXED;
            if payload.len() > max {
                return Err(StoreError::TooLarge {
                    what: "event payload",
                    len: payload.len(),
                    max,
                });
            }
        }
        Record::Idempotency { key, response } => {
            if key.len() > MAX_KEY {
                return Err(StoreError::TooLarge {
                    what: "idempotency key",
                    len: key.len(),
                    max: MAX_KEY,
                });
            }
            let max = MAX_BODY - 2 - key.len();
            if response.len() > max {
                return Err(StoreError::TooLarge {
                    what: "idempotency response",
                    len: response.len(),
                    max,
                });
            }
        }
    }
    Ok(())
}

/// Bytes `encode` appends for `rec`.
pub(crate) fn encoded_len(rec: &Record) -> usize {
    RECORD_HEADER_LEN
        + match rec {
            Record::Event { payload, .. } => EVENT_FIXED + payload.len(),
            Record::Idempotency { key, response } => 2 + key.len() + response.len(),
        }
}

/// Appends the framed record to `out`. `rec` must have passed [`validate`].
pub(crate) fn encode(rec: &Record, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0u8; RECORD_HEADER_LEN]);
    let kind = match rec {
        Record::Event {
            incident,
            version,
            payload,
        } => {
            out.extend_from_slice(incident);
            out.extend_from_slice(&version.to_le_bytes());
            out.extend_from_slice(payload);
            KIND_EVENT
        }
        Record::Idempotency { key, response } => {
            // validate() bounds the key to u16.
            let key_len = u16::try_from(key.len()).unwrap_or(u16::MAX);
            out.extend_from_slice(&key_len.to_le_bytes());
            out.extend_from_slice(&key.as_bytes()[..usize::from(key_len)]);
            out.extend_from_slice(response);
            KIND_IDEMPOTENCY
        }
    };
    let body_len = u32::try_from(out.len() - start - RECORD_HEADER_LEN).unwrap_or(u32::MAX);
    out[start] = kind;
    out[start + 1..start + 5].copy_from_slice(&body_len.to_le_bytes());
    let crc = record_crc(&out[start..start + 5], &out[start + RECORD_HEADER_LEN..]);
    out[start + 5..start + RECORD_HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
}

fn record_crc(kind_and_len: &[u8], body: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(kind_and_len);
    h.update(body);
    h.finalize()
}

/// The fixed part in front of every record body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordHeader {
    raw: [u8; RECORD_HEADER_LEN],
}

impl RecordHeader {
    pub(crate) fn new(raw: [u8; RECORD_HEADER_LEN]) -> Self {
        RecordHeader { raw }
    }

    pub(crate) fn kind(&self) -> u8 {
        self.raw[0]
    }

    pub(crate) fn body_len(&self) -> usize {
        u32::from_le_bytes([self.raw[1], self.raw[2], self.raw[3], self.raw[4]]) as usize
    }

    /// Whether the header could start a record at all (known kind, sane length).
    pub(crate) fn plausible(&self) -> bool {
        matches!(self.kind(), KIND_EVENT | KIND_IDEMPOTENCY) && self.body_len() <= MAX_BODY
    }

    /// Whether `body` is the body this header was written with.
    pub(crate) fn matches(&self, body: &[u8]) -> bool {
        let crc = u32::from_le_bytes([self.raw[5], self.raw[6], self.raw[7], self.raw[8]]);
        body.len() == self.body_len() && record_crc(&self.raw[..5], body) == crc
    }
}

/// A record read back from the log, borrowing its body.
#[derive(Debug)]
pub(crate) enum Body<'a> {
    Event {
        incident: IncidentKey,
        version: u64,
        payload: &'a [u8],
    },
    Idempotency {
        key: &'a str,
        response: &'a [u8],
    },
}

/// Splits a CRC-checked body into its fields.
pub(crate) fn parse_body(kind: u8, body: &[u8]) -> Result<Body<'_>, String> {
    match kind {
        KIND_EVENT => {
            let (incident, version) = event_head(body).ok_or("event record shorter than its fixed part")?;
            Ok(Body::Event {
                incident,
                version,
                payload: &body[EVENT_FIXED..],
            })
        }
        KIND_IDEMPOTENCY => {
            let len_bytes = body.get(..2).ok_or("idempotency record shorter than its key length")?;
            let key_len = usize::from(u16::from_le_bytes([len_bytes[0], len_bytes[1]]));
            let key = body.get(2..2 + key_len).ok_or("idempotency key runs past its record")?;
            let key = std::str::from_utf8(key).map_err(|_| "idempotency key is not UTF-8")?;
            Ok(Body::Idempotency {
                key,
                response: &body[2 + key_len..],
            })
        }
        other => Err(format!("unknown record kind {other:#04x}")),
    }
}

/// Incident and version of an event body, without touching the payload.
pub(crate) fn event_head(body: &[u8]) -> Option<(IncidentKey, u64)> {
    let incident: IncidentKey = body.get(..16)?.try_into().ok()?;
    let version = u64::from_le_bytes(body.get(16..EVENT_FIXED)?.try_into().ok()?);
    Some((incident, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(rec: &Record) -> Vec<u8> {
        let mut out = Vec::new();
        encode(rec, &mut out);
        out
    }

    #[test]
    fn event_round_trips() {
        let rec = Record::Event {
            incident: [7; 16],
            version: 42,
            payload: b"hello".to_vec(),
        };
        let bytes = one(&rec);
        assert_eq!(bytes.len(), encoded_len(&rec));
        let mut raw = [0u8; RECORD_HEADER_LEN];
        raw.copy_from_slice(&bytes[..RECORD_HEADER_LEN]);
        let h = RecordHeader::new(raw);
        assert!(h.plausible());
        let body = &bytes[RECORD_HEADER_LEN..];
        assert!(h.matches(body));
        match parse_body(h.kind(), body) {
            Ok(Body::Event {
                incident,
                version,
                payload,
            }) => {
                assert_eq!((incident, version, payload), ([7; 16], 42, &b"hello"[..]));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn idempotency_round_trips() {
        let rec = Record::Idempotency {
            key: "req-1".into(),
            response: vec![1, 2, 3],
        };
        let bytes = one(&rec);
        assert_eq!(bytes.len(), encoded_len(&rec));
        match parse_body(bytes[0], &bytes[RECORD_HEADER_LEN..]) {
            Ok(Body::Idempotency { key, response }) => assert_eq!((key, response), ("req-1", &[1u8, 2, 3][..])),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn every_single_byte_change_is_detected() {
        let rec = Record::Event {
            incident: [1; 16],
            version: 3,
            payload: b"payload".to_vec(),
        };
        let bytes = one(&rec);
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x80, 0xFF] {
                let mut b = bytes.clone();
                b[i] ^= flip;
                let mut raw = [0u8; RECORD_HEADER_LEN];
                raw.copy_from_slice(&b[..RECORD_HEADER_LEN]);
                let h = RecordHeader::new(raw);
                let body = b.get(RECORD_HEADER_LEN..RECORD_HEADER_LEN + h.body_len());
                let accepted = h.plausible() && body.is_some_and(|body| h.matches(body));
                assert!(!accepted, "flip {flip:#x} at byte {i} went unnoticed");
            }
        }
    }

    #[test]
    fn file_header_is_checked() {
        let h = file_header();
        assert!(check_file_header(&h).is_ok());
        let mut bad = h;
        bad[9] ^= 1;
        assert!(check_file_header(&bad).is_err());
        assert!(check_file_header(&h[..10]).is_err());
    }

    #[test]
    fn oversized_records_are_refused() {
        let key = "k".repeat(MAX_KEY + 1);
        let rec = Record::Idempotency {
            key,
            response: Vec::new(),
        };
        assert!(matches!(validate(&rec), Err(StoreError::TooLarge { .. })));
    }
}
