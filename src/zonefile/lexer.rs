//! Splits master-file text into entries (logical lines) of tokens.
//!
//! Tokens are byte ranges into the source, escapes left in place: what an
//! escape means depends on the field (a `\.` is a literal dot in a name but
//! just a dot in a string), so fields decode their own tokens. This also keeps
//! lexing free of per-token allocation.

#[derive(Debug, Clone, Copy)]
pub(crate) struct Tok {
    pub start: usize,
    pub end: usize,
    /// Written as a `"quoted string"`; the range excludes the quotes.
    pub quoted: bool,
}

pub(crate) struct Lexer<'a> {
    buf: &'a [u8],
    pos: usize,
    line: usize,
}

/// One logical line.
pub(crate) struct Entry {
    pub line: usize,
    /// The line began with white space: the owner is the previous one.
    pub blank_owner: bool,
}

impl<'a> Lexer<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            line: 1,
        }
    }

    /// Reads the next non-empty entry into `toks`. Errors carry a line number.
    pub fn next_entry(&mut self, toks: &mut Vec<Tok>) -> Result<Option<Entry>, (usize, String)> {
        let buf = self.buf;
        loop {
            toks.clear();
            if self.pos >= buf.len() {
                return Ok(None);
            }
            let line = self.line;
            let blank_owner = matches!(buf[self.pos], b' ' | b'\t');
            let mut depth = 0usize;
            let mut paren_line = 0;
            loop {
                while self.pos < buf.len() && matches!(buf[self.pos], b' ' | b'\t' | b'\r') {
                    self.pos += 1;
                }
                let Some(&c) = buf.get(self.pos) else {
                    if depth > 0 {
                        return Err((paren_line, "unbalanced '(' (no matching ')')".into()));
                    }
                    break;
                };
                match c {
                    b'\n' => {
                        self.pos += 1;
                        self.line += 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    b';' => {
                        while self.pos < buf.len() && buf[self.pos] != b'\n' {
                            self.pos += 1;
                        }
                    }
                    b'(' => {
                        if depth == 0 {
                            paren_line = self.line;
                        }
                        depth += 1;
                        self.pos += 1;
                    }
                    b')' => {
                        if depth == 0 {
                            return Err((self.line, "unbalanced ')'".into()));
                        }
                        depth -= 1;
                        self.pos += 1;
                    }
                    b'"' => {
                        self.pos += 1;
                        let start = self.pos;
                        self.skip_quoted()?;
                        toks.push(Tok {
                            start,
                            end: self.pos - 1,
                            quoted: true,
                        });
                    }
                    _ => {
                        let start = self.pos;
                        while let Some(&c) = buf.get(self.pos) {
                            match c {
                                b' ' | b'\t' | b'\r' | b'\n' | b';' | b'(' | b')' => break,
                                b'\\' => {
                                    if buf.get(self.pos + 1) == Some(&b'\n') {
                                        self.line += 1;
                                    }
                                    self.pos = (self.pos + 2).min(buf.len());
                                }
                                // key="value" (SVCB) keeps the quoted part in the token.
                                b'"' => {
                                    self.pos += 1;
                                    self.skip_quoted()?;
                                }
                                _ => self.pos += 1,
                            }
                        }
                        toks.push(Tok {
                            start,
                            end: self.pos,
                            quoted: false,
                        });
                    }
                }
            }
            if !toks.is_empty() {
                return Ok(Some(Entry { line, blank_owner }));
            }
        }
    }

    /// Moves past the closing quote of a string whose opening quote is behind us.
    fn skip_quoted(&mut self) -> Result<(), (usize, String)> {
        let buf = self.buf;
        while let Some(&c) = buf.get(self.pos) {
            match c {
                b'"' => {
                    self.pos += 1;
                    return Ok(());
                }
                b'\\' => {
                    if buf.get(self.pos + 1) == Some(&b'\n') {
                        self.line += 1;
                    }
                    self.pos += 2;
                }
                b'\n' => return Err((self.line, "unterminated quoted string".into())),
                _ => self.pos += 1,
            }
        }
        Err((self.line, "unterminated quoted string".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex(text: &str) -> Vec<(usize, bool, Vec<String>)> {
        let mut lx = Lexer::new(text.as_bytes());
        let mut toks = Vec::new();
        let mut out = Vec::new();
        while let Some(e) = lx.next_entry(&mut toks).unwrap() {
            let t = toks
                .iter()
                .map(|t| {
                    format!(
                        "{}{}",
                        if t.quoted { "Q:" } else { "" },
                        &text[t.start..t.end]
                    )
                })
                .collect();
            out.push((e.line, e.blank_owner, t));
        }
        out
    }

    #[test]
    fn entries() {
        let got = lex(
            "a 1 IN A 1.2.3.4 ; c\n\n  ; only comment\n\tTXT \"x y\\\" (\" z\\ w\nb SOA ( n\n m ; c\n 1 ) ; t\nc  svcb 1 . alpn=\"h2,h 3\"\n",
        );
        assert_eq!(got.len(), 4);
        assert_eq!(
            got[0],
            (
                1,
                false,
                vec![
                    "a".into(),
                    "1".into(),
                    "IN".into(),
                    "A".into(),
                    "1.2.3.4".into()
                ]
            )
        );
        assert_eq!(
            got[1],
            (
                4,
                true,
                vec!["TXT".into(), "Q:x y\\\" (".into(), "z\\ w".into()]
            )
        );
        assert_eq!(got[2].0, 5);
        assert_eq!(got[2].2, vec!["b", "SOA", "n", "m", "1"]);
        assert_eq!(got[3].0, 8);
        assert_eq!(got[3].2[4], "alpn=\"h2,h 3\"");
    }

    #[test]
    fn errors() {
        let mut toks = Vec::new();
        let e = Lexer::new(b"a\nb ( x\n y\n")
            .next_entry(&mut toks)
            .map(|_| ());
        assert!(e.is_ok());
        let mut lx = Lexer::new(b"a\nb ( x\n y\n");
        lx.next_entry(&mut toks).unwrap();
        assert_eq!(lx.next_entry(&mut toks).err().unwrap().0, 2);
        let mut lx = Lexer::new(b"a )\n");
        assert_eq!(lx.next_entry(&mut toks).err().unwrap().1, "unbalanced ')'");
        let mut lx = Lexer::new(b"\n\na \"x\n");
        assert_eq!(lx.next_entry(&mut toks).err().unwrap().0, 3);
    }
}
