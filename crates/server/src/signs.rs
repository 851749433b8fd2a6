//! What a message sign (可变情报板) can show: its longest text and its
//! character set. Read by the configuration (the fallback text) and by the
//! engine's lawful edits (an operator's text).

/// Longest text a message sign shows (characters).
pub const VMS_MAX_CHARS: usize = 64;

/// Whether `text` fits a message sign: at most [`VMS_MAX_CHARS`]
/// characters of letters and digits (any script, so Chinese), spaces
/// (ASCII and ideographic) and the punctuation `. , : ; ! ? - + / ( ) %`
/// with their full-width forms and `、。`. No control characters (NUL,
/// ESC, line breaks), no markup (`< > & " '`), no emoji.
pub fn check_vms_text(text: &str) -> Result<(), String> {
    let n = text.chars().count();
    if n > VMS_MAX_CHARS {
        return Err(format!(
            "text of {n} characters: a message sign shows at most {VMS_MAX_CHARS}"
        ));
    }
    const PUNCT: &str = ".,:;!?-+/()%，。：；！？－＋／（）％、　 ";
    if let Some(c) = text
        .chars()
        .find(|c| !(c.is_alphanumeric() || PUNCT.contains(*c)))
    {
        return Err(format!(
            "character {:?} (U+{:04X}) is not in the message signs' character set",
            c, c as u32
        ));
    }
    Ok(())
}
