//! Percent-decoding of URL parts (a password or a file path in a URL's query),
//! as `%XX` escapes; a `%` not followed by two hex digits is kept as it is, and
//! bytes that do not form UTF-8 become U+FFFD.

/// `value` with its `%XX` escapes decoded.
pub fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = value.get(i + 1..i + 3).and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_decoded_and_stray_percents_kept() {
        assert_eq!(percent_decode("us%40er:p%3Ass"), "us@er:p:ss");
        assert_eq!(percent_decode("/tmp/ca%20file.pem"), "/tmp/ca file.pem");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
