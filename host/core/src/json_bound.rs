//! A cheap scan of JSON text before it is parsed (an API request body, a vCon a
//! link returns), bounding what the parse may build. A `serde_json::Value` costs
//! 16–40 times the text it comes from for dense input (`[0,0,0,…]`: 2 bytes of
//! text, a 32-byte `Value` plus growth slack), so a 32 MiB body could take over
//! a gigabyte. The scan counts values (containers and
//! the separators between elements and members) and the nesting depth outside
//! strings, and stops at the first limit exceeded. It does not validate the JSON:
//! the parser still does that.

/// Why a body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TooComplex {
    /// More values than allowed.
    Values(usize),
    /// Nested deeper than allowed.
    Depth(usize),
}

/// Check `bytes` against `max_values` and `max_depth`.
pub fn check(bytes: &[u8], max_values: usize, max_depth: usize) -> Result<(), TooComplex> {
    let mut values: usize = 1;
    let mut depth: usize = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                // Skip the string: jump from one quote or backslash to the next
                // (long strings, base64 recordings, are most of a vCon's bytes).
                i += 1;
                loop {
                    match memchr::memchr2(b'"', b'\\', &bytes[i.min(bytes.len())..]) {
                        None => return Ok(()),
                        Some(at) if bytes[i + at] == b'\\' => i += at + 2,
                        Some(at) => {
                            i += at;
                            break;
                        }
                    }
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > max_depth {
                    return Err(TooComplex::Depth(max_depth));
                }
                values += 1;
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b',' => values += 1,
            _ => {}
        }
        if values > max_values {
            return Err(TooComplex::Values(max_values));
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_values_and_depth_outside_strings() {
        assert_eq!(check(b"[0,0,0]", 4, 8), Ok(()));
        assert_eq!(check(b"[0,0,0,0]", 4, 8), Err(TooComplex::Values(4)));
        assert_eq!(check(br#"{"a":"[[[[,,,,,\"]]]]"}"#, 3, 2), Ok(()));
        assert_eq!(check(b"[[[1]]]", 100, 3), Ok(()));
        assert_eq!(check(b"[[[[1]]]]", 100, 3), Err(TooComplex::Depth(3)));
        // Unbalanced or odd input is left to the parser.
        assert_eq!(check(b"]]]]{", 100, 3), Ok(()));
    }

    #[test]
    fn a_dense_array_is_refused_after_the_limit_without_reading_on() {
        let mut body = b"[".to_vec();
        body.extend(std::iter::repeat_n(b"0,".as_slice(), 5_000).flatten());
        body.push(b'0');
        body.push(b']');
        assert_eq!(check(&body, 1_000, 128), Err(TooComplex::Values(1_000)));
        assert_eq!(check(&body, 10_000, 128), Ok(()));
    }
}
