//! `LOG_LEVEL` as an env-filter directive, with the spellings a Python
//! deployment uses: `WARNING`, `CRITICAL`, `FATAL`, `NOTSET` and the numeric
//! levels (10–50). A bare word that is no level (which the env filter would take
//! for a target name, silencing every line) falls back to `info` with a warning.

/// The filter directive for `value`, and a warning when it was not understood.
pub fn directive(value: &str) -> (String, Option<String>) {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return ("info".into(), None);
    }
    // A full directive (`conserver=debug,info`) is the env filter's business.
    if trimmed.contains(['=', ',', ':', '[']) {
        return (trimmed.to_lowercase(), None);
    }
    let level = match trimmed.to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" | "10" | "NOTSET" | "0" => "debug",
        "INFO" | "20" => "info",
        "WARN" | "WARNING" | "30" => "warn",
        "ERROR" | "40" | "CRITICAL" | "FATAL" | "50" => "error",
        "OFF" => "off",
        _ => {
            let warning = format!(
                "LOG_LEVEL={trimmed:?} is not a level; logging at info (use trace, debug, info, warning, error or critical)"
            );
            return ("info".into(), Some(warning));
        }
    };
    (level.into(), None)
}

#[cfg(test)]
mod tests {
    use super::directive;

    #[test]
    fn python_level_names_and_numbers_work() {
        for (python, ours) in [
            ("WARNING", "warn"),
            ("warning", "warn"),
            ("CRITICAL", "error"),
            ("FATAL", "error"),
            ("ERROR", "error"),
            ("INFO", "info"),
            ("DEBUG", "debug"),
            ("NOTSET", "debug"),
            ("30", "warn"),
            ("50", "error"),
            (" info ", "info"),
            ("trace", "trace"),
        ] {
            assert_eq!(directive(python), (ours.to_string(), None), "{python}");
        }
    }

    #[test]
    fn directives_pass_through_and_unknown_words_fall_back_to_info_with_a_warning() {
        assert_eq!(directive("conserver=debug,warn"), ("conserver=debug,warn".to_string(), None));
        assert_eq!(directive(""), ("info".to_string(), None));
        let (level, warning) = directive("verbose");
        assert_eq!(level, "info");
        assert!(warning.is_some_and(|w| w.contains("verbose") && w.contains("warning")));
    }
}
