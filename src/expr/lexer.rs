//! The lexer: text to [`Token`]s with byte spans.

use super::error::{ExprError, Span};

/// A lexical token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// Digits without a sign, `.` or exponent.
    Int(u128),
    /// A finite float: digits with a `.` or an exponent.
    Float(f64),
    /// A quoted string, escapes resolved.
    Str(String),
    /// A bare identifier, which may be a keyword or a function name.
    Ident(String),
    /// A backquoted name: always a column.
    Quoted(String),
    /// Punctuation and operators.
    Punct(Punct),
    /// The end of the text.
    End,
}

/// Punctuation and operator tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Punct {
    LParen,
    RParen,
    Comma,
    Bang,
    Minus,
    Plus,
    Star,
    Slash,
    Percent,
    /// `==` or `=`.
    Eq,
    /// `!=` or `<>`.
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    AndAnd,
    OrOr,
}

/// A token and where it is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) span: Span,
}

impl Token {
    /// Whether this token is the bare keyword `kw` (ASCII case ignored).
    pub(crate) fn is_keyword(&self, kw: &str) -> bool {
        matches!(&self.tok, Tok::Ident(s) if s.eq_ignore_ascii_case(kw))
    }
}

/// Splits `text` into tokens, ending with [`Tok::End`].
///
/// Lexing stops at the first character that starts no token, an unterminated string or
/// name, a bad escape, or a number that does not fit: the tokens before it come back with a
/// [`Tok::End`] at that place and the error, for the parser to report when it gets there
/// (so that an earlier syntax error is reported first).
pub(crate) fn tokenize(text: &str) -> (Vec<Token>, Option<ExprError>) {
    let mut lexer = Lexer { text, pos: 0 };
    let mut out = Vec::new();
    loop {
        let start = lexer.pos;
        match lexer.next_token() {
            Ok(token) => {
                let end = token.tok == Tok::End;
                out.push(token);
                if end {
                    return (out, None);
                }
            }
            Err(e) => {
                let at = e.position().unwrap_or(start);
                out.push(Token {
                    tok: Tok::End,
                    span: Span::new(at, at),
                });
                return (out, Some(e));
            }
        }
    }
}

struct Lexer<'a> {
    text: &'a str,
    pos: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn peek2(&self) -> Option<char> {
        let mut chars = self.text[self.pos..].chars();
        chars.next();
        chars.next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn error(at: usize, expected: &str, found: String) -> ExprError {
        ExprError::Parse {
            position: at,
            expected: expected.to_owned(),
            found,
        }
    }

    /// What is at `at`, for an error message: the character, or "the end".
    fn found_at(&self, at: usize) -> String {
        match self.text[at..].chars().next() {
            Some(c) => format!("{c:?}"),
            None => "the end".to_owned(),
        }
    }

    fn next_token(&mut self) -> Result<Token, ExprError> {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
        let start = self.pos;
        let Some(c) = self.bump() else {
            return Ok(Token {
                tok: Tok::End,
                span: Span::new(start, start),
            });
        };
        let tok = match c {
            '(' => Tok::Punct(Punct::LParen),
            ')' => Tok::Punct(Punct::RParen),
            ',' => Tok::Punct(Punct::Comma),
            '-' => Tok::Punct(Punct::Minus),
            '+' => Tok::Punct(Punct::Plus),
            '*' => Tok::Punct(Punct::Star),
            '/' => Tok::Punct(Punct::Slash),
            '%' => Tok::Punct(Punct::Percent),
            '!' => Tok::Punct(self.then('=', Punct::NotEq, Punct::Bang)),
            '=' => Tok::Punct(self.then('=', Punct::Eq, Punct::Eq)),
            '<' => Tok::Punct(if self.peek() == Some('>') {
                self.bump();
                Punct::NotEq
            } else {
                self.then('=', Punct::LtEq, Punct::Lt)
            }),
            '>' => Tok::Punct(self.then('=', Punct::GtEq, Punct::Gt)),
            '&' | '|' => {
                if self.peek() != Some(c) {
                    let expected = if c == '&' { "'&&'" } else { "'||'" };
                    return Err(Self::error(start, expected, format!("{c:?}")));
                }
                self.bump();
                Tok::Punct(if c == '&' { Punct::AndAnd } else { Punct::OrOr })
            }
            '"' | '\'' => Tok::Str(self.string(start, c)?),
            '`' => Tok::Quoted(self.quoted(start)?),
            c if c.is_ascii_digit() => self.number(start)?,
            c if c == '_' || c.is_ascii_alphabetic() => {
                while self
                    .peek()
                    .is_some_and(|c| c == '_' || c.is_ascii_alphanumeric())
                {
                    self.bump();
                }
                Tok::Ident(self.text[start..self.pos].to_owned())
            }
            _ => {
                return Err(Self::error(
                    start,
                    "a value, a column or an operator",
                    self.found_at(start),
                ))
            }
        };
        Ok(Token {
            tok,
            span: Span::new(start, self.pos),
        })
    }

    /// `two` if the next character is `next` (consumed), else `one`.
    fn then(&mut self, next: char, two: Punct, one: Punct) -> Punct {
        if self.peek() == Some(next) {
            self.bump();
            two
        } else {
            one
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
        self.pos - start
    }

    fn number(&mut self, start: usize) -> Result<Tok, ExprError> {
        self.digits();
        let mut float = false;
        if self.peek() == Some('.') && self.peek2().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
            self.digits();
            float = true;
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            let at = self.pos;
            self.bump();
            if matches!(self.peek(), Some('+' | '-')) {
                self.bump();
            }
            if self.digits() == 0 {
                return Err(Self::error(
                    at,
                    "digits in the exponent",
                    self.found_at(self.pos),
                ));
            }
            float = true;
        }
        let text = &self.text[start..self.pos];
        if float {
            match text.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(Tok::Float(v)),
                _ => Err(Self::error(start, "a finite number", text.to_owned())),
            }
        } else {
            text.parse::<u128>()
                .map(Tok::Int)
                .map_err(|_| Self::error(start, "a 128-bit integer", text.to_owned()))
        }
    }

    fn string(&mut self, start: usize, quote: char) -> Result<String, ExprError> {
        let mut out = String::new();
        loop {
            let at = self.pos;
            match self.bump() {
                None => {
                    return Err(Self::error(
                        at,
                        &format!("a closing {quote:?} for the string at {start}"),
                        "the end".to_owned(),
                    ))
                }
                Some(c) if c == quote => return Ok(out),
                Some('\\') => out.push(self.escape(at)?),
                Some(c) => out.push(c),
            }
        }
    }

    fn escape(&mut self, at: usize) -> Result<char, ExprError> {
        const EXPECTED: &str = r#"an escape (\n \r \t \0 \\ \" \' \u{...})"#;
        let bad = |lexer: &Self| {
            let end = lexer.pos.min(lexer.text.len());
            Self::error(at, EXPECTED, format!("'{}'", &lexer.text[at..end]))
        };
        let c = match self.bump() {
            Some('n') => '\n',
            Some('r') => '\r',
            Some('t') => '\t',
            Some('0') => '\0',
            Some(c @ ('\\' | '"' | '\'')) => c,
            Some('u') => {
                if self.bump() != Some('{') {
                    return Err(bad(self));
                }
                let digits = self.pos;
                while self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                    self.bump();
                }
                let hex = &self.text[digits..self.pos];
                if self.bump() != Some('}') {
                    return Err(bad(self));
                }
                u32::from_str_radix(hex, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| bad(self))?
            }
            Some(_) => return Err(bad(self)),
            None => return Err(Self::error(at, EXPECTED, "the end".to_owned())),
        };
        Ok(c)
    }

    fn quoted(&mut self, start: usize) -> Result<String, ExprError> {
        let mut out = String::new();
        loop {
            match self.bump() {
                None => {
                    return Err(Self::error(
                        self.pos,
                        &format!("a closing '`' for the name at {start}"),
                        "the end".to_owned(),
                    ))
                }
                Some('`') if self.peek() == Some('`') => {
                    self.bump();
                    out.push('`');
                }
                Some('`') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Vec<Tok> {
        let (tokens, error) = tokenize(text);
        assert!(error.is_none(), "{error:?}");
        tokens.into_iter().map(|t| t.tok).collect()
    }

    fn err(text: &str) -> String {
        tokenize(text).1.expect("an error").to_string()
    }

    #[test]
    fn smoke() {
        assert_eq!(
            toks("Price >= 1e6"),
            vec![
                Tok::Ident("Price".into()),
                Tok::Punct(Punct::GtEq),
                Tok::Float(1e6),
                Tok::End
            ]
        );
    }

    #[test]
    fn spans_are_byte_ranges() {
        let (t, e) = tokenize("a == é");
        assert_eq!(e.and_then(|e| e.position()), Some(5));
        assert_eq!(t.last().map(|t| t.span), Some(Span::new(5, 5)));
        let (t, _) = tokenize("a  ==\t'x'");
        let spans: Vec<_> = t.iter().map(|t| (t.span.start, t.span.end)).collect();
        assert_eq!(spans, vec![(0, 1), (3, 5), (6, 9), (9, 9)]);
    }

    #[test]
    fn operators_have_their_alternative_spellings() {
        assert_eq!(
            toks("= == <> != < <= > >= && || ! - + * / %"),
            [
                Punct::Eq,
                Punct::Eq,
                Punct::NotEq,
                Punct::NotEq,
                Punct::Lt,
                Punct::LtEq,
                Punct::Gt,
                Punct::GtEq,
                Punct::AndAnd,
                Punct::OrOr,
                Punct::Bang,
                Punct::Minus,
                Punct::Plus,
                Punct::Star,
                Punct::Slash,
                Punct::Percent,
            ]
            .into_iter()
            .map(Tok::Punct)
            .chain([Tok::End])
            .collect::<Vec<_>>()
        );
    }

    #[test]
    fn numbers_are_ints_or_floats() {
        assert_eq!(toks("12")[0], Tok::Int(12));
        assert_eq!(toks("1.5")[0], Tok::Float(1.5));
        assert_eq!(toks("2E-3")[0], Tok::Float(2e-3));
        assert_eq!(
            toks("1700000000000000000")[0],
            Tok::Int(1_700_000_000_000_000_000)
        );
        // `1.` is the integer 1 followed by something that is not a token.
        assert_eq!(
            err("1."),
            "at 1: expected a value, a column or an operator, found '.'"
        );
        assert_eq!(
            err("1e"),
            "at 1: expected digits in the exponent, found the end"
        );
        assert_eq!(err("1e999"), "at 0: expected a finite number, found 1e999");
    }

    #[test]
    fn strings_take_either_quote_and_escapes() {
        assert_eq!(toks(r#""a\"b""#)[0], Tok::Str("a\"b".into()));
        assert_eq!(toks(r"'it\'s'")[0], Tok::Str("it's".into()));
        assert_eq!(toks(r#"'say "hi"'"#)[0], Tok::Str("say \"hi\"".into()));
        assert_eq!(toks(r"'\n\t\\\u{e9}'")[0], Tok::Str("\n\t\\é".into()));
        assert_eq!(
            err("Sym == 'abc"),
            "at 11: expected a closing '\\'' for the string at 7, found the end"
        );
        assert_eq!(
            err(r#"Sym == "a\qb""#),
            r#"at 9: expected an escape (\n \r \t \0 \\ \" \' \u{...}), found '\q'"#
        );
    }

    #[test]
    fn backquoted_names_double_their_backquotes() {
        assert_eq!(toks("`odd name`")[0], Tok::Quoted("odd name".into()));
        assert_eq!(toks("`a``b`")[0], Tok::Quoted("a`b".into()));
        assert_eq!(
            err("`abc"),
            "at 4: expected a closing '`' for the name at 0, found the end"
        );
    }

    #[test]
    fn single_ampersand_is_an_error() {
        assert_eq!(err("a & b"), "at 2: expected '&&', found '&'");
        assert_eq!(err("a | b"), "at 2: expected '||', found '|'");
    }
}
