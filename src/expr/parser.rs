//! The parser: tokens to an [`Expr`], by precedence climbing.

use std::str::FromStr;

use super::ast::{prec, BinaryOp, Expr, ExprKind, Function, Literal, UnaryOp, KEYWORDS};
use super::error::{suggest, ExprError, Span, MAX_DEPTH};
use super::lexer::{tokenize, Punct, Tok, Token};

/// How deep parentheses and prefix operators may nest: the parser recurses for each, with
/// bigger frames than the passes over the tree.
const MAX_NESTING: usize = MAX_DEPTH / 2;

impl Expr {
    /// Parses an expression such as `Price > 100 && Sym in ("AAPL", "MSFT")`.
    ///
    /// The grammar, the precedence of the operators and the spelling of the literals are in
    /// the [module docs](crate::expr). Parsing checks the syntax only; [`Expr::bind`] checks
    /// the columns and the types.
    ///
    /// # Errors
    ///
    /// [`ExprError::Parse`] at the first token that does not fit (with what was expected
    /// there), [`ExprError::UnknownFunction`], [`ExprError::WrongArgumentCount`], or
    /// [`ExprError::TooDeep`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tickertable::expr::Expr;
    ///
    /// let e = Expr::parse("size >= 1000 OR Venue IS NULL")?;
    /// assert_eq!(e.to_string(), "size >= 1000 || is_null(Venue)");
    ///
    /// let err = Expr::parse("Price > )").unwrap_err();
    /// assert_eq!(err.to_string(), "at 8: expected a value, found ')'");
    /// # Ok::<(), tickertable::ExprError>(())
    /// ```
    pub fn parse(text: &str) -> Result<Expr, ExprError> {
        let (tokens, lex_error) = tokenize(text);
        let mut parser = Parser {
            text,
            tokens,
            at: 0,
            lex_error,
            nesting: 0,
        };
        let expr = parser.expr(prec::OR)?;
        if parser.peek().tok != Tok::End {
            return Err(parser.unexpected("an operator or the end"));
        }
        match parser.lex_error.take() {
            Some(e) => Err(e),
            None => Ok(expr),
        }
    }
}

impl FromStr for Expr {
    type Err = ExprError;

    /// Same as [`Expr::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Expr::parse(s)
    }
}

struct Parser<'a> {
    text: &'a str,
    /// Ends with a [`Tok::End`].
    tokens: Vec<Token>,
    at: usize,
    /// The lexer stopped here: reported when the parser reaches the last token.
    lex_error: Option<ExprError>,
    /// How many levels of recursion are open, bounded by [`MAX_NESTING`].
    nesting: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.tokens[self.at.min(self.tokens.len() - 1)]
    }

    /// Consumes the current token (the last, [`Tok::End`], stays).
    fn bump(&mut self) -> Token {
        let last = self.tokens.len() - 1;
        if self.at < last {
            self.at += 1;
            let span = self.tokens[self.at - 1].span;
            // The parser never looks back: move the token out instead of cloning it.
            std::mem::replace(
                &mut self.tokens[self.at - 1],
                Token {
                    tok: Tok::End,
                    span,
                },
            )
        } else {
            self.tokens[last].clone()
        }
    }

    fn is_punct(&self, p: Punct) -> bool {
        self.peek().tok == Tok::Punct(p)
    }

    fn is_keyword(&self, kw: &str) -> bool {
        self.peek().is_keyword(kw)
    }

    /// An error at the current token: `expected`, found whatever is there. At the last token,
    /// the lexer's error if it stopped there.
    fn unexpected(&mut self, expected: &str) -> ExprError {
        if self.peek().tok == Tok::End {
            if let Some(e) = self.lex_error.take() {
                return e;
            }
        }
        let t = self.peek();
        let found = if t.tok == Tok::End {
            "the end".to_owned()
        } else {
            let text = &self.text[t.span.start..t.span.end];
            if text.chars().count() > 24 {
                let cut: String = text.chars().take(21).collect();
                format!("'{cut}...'")
            } else {
                format!("'{text}'")
            }
        };
        ExprError::Parse {
            position: t.span.start,
            expected: expected.to_owned(),
            found,
        }
    }

    fn expect(&mut self, p: Punct, expected: &str) -> Result<Token, ExprError> {
        if self.is_punct(p) {
            Ok(self.bump())
        } else {
            Err(self.unexpected(expected))
        }
    }

    fn binary(op: BinaryOp, op_span: Span, left: Expr, right: Expr) -> Result<Expr, ExprError> {
        let span = left.span().to(right.span());
        Expr::checked(
            ExprKind::Binary {
                op,
                left: Box::new(left),
                right: Box::new(right),
            },
            span,
            op_span,
        )
    }

    fn unary(op: UnaryOp, op_span: Span, operand: Expr) -> Result<Expr, ExprError> {
        let span = op_span.to(operand.span());
        Expr::checked(
            ExprKind::Unary {
                op,
                operand: Box::new(operand),
            },
            span,
            op_span,
        )
    }

    /// The infix operator at the current token, and how tightly it binds.
    fn infix(&self) -> Option<(Infix, u8)> {
        let t = self.peek();
        let op = match t.tok {
            Tok::Punct(Punct::OrOr) => BinaryOp::Or,
            Tok::Punct(Punct::AndAnd) => BinaryOp::And,
            Tok::Punct(Punct::Eq) => BinaryOp::Eq,
            Tok::Punct(Punct::NotEq) => BinaryOp::NotEq,
            Tok::Punct(Punct::Lt) => BinaryOp::Lt,
            Tok::Punct(Punct::LtEq) => BinaryOp::LtEq,
            Tok::Punct(Punct::Gt) => BinaryOp::Gt,
            Tok::Punct(Punct::GtEq) => BinaryOp::GtEq,
            Tok::Punct(Punct::Plus) => BinaryOp::Add,
            Tok::Punct(Punct::Minus) => BinaryOp::Sub,
            Tok::Punct(Punct::Star) => BinaryOp::Mul,
            Tok::Punct(Punct::Slash) => BinaryOp::Div,
            Tok::Punct(Punct::Percent) => BinaryOp::Rem,
            Tok::Ident(_) if t.is_keyword("or") => BinaryOp::Or,
            Tok::Ident(_) if t.is_keyword("and") => BinaryOp::And,
            Tok::Ident(_)
                if ["in", "between", "is", "not"]
                    .iter()
                    .any(|k| t.is_keyword(k)) =>
            {
                return Some((Infix::Postfix, prec::CMP));
            }
            _ => return None,
        };
        Some((Infix::Binary(op), op.precedence()))
    }

    /// An expression whose infix operators bind at least as tightly as `min` (see
    /// [`prec`]); binary operators of one level group to the left.
    ///
    /// Precedence climbing: a chain `a || b || c` is a loop, and only parentheses, prefix
    /// operators and right operands recurse, each counted against [`MAX_NESTING`].
    fn expr(&mut self, min: u8) -> Result<Expr, ExprError> {
        if self.nesting >= MAX_NESTING {
            return Err(ExprError::TooDeep {
                limit: MAX_NESTING,
                position: self.peek().span.start,
            });
        }
        self.nesting += 1;
        let out = self.climb(min);
        self.nesting -= 1;
        out
    }

    fn climb(&mut self, min: u8) -> Result<Expr, ExprError> {
        let mut left = self.prefix(min)?;
        while let Some((op, p)) = self.infix() {
            if p < min {
                break;
            }
            left = match op {
                Infix::Binary(op) => {
                    let op_span = self.bump().span;
                    let right = self.expr(p + 1)?;
                    Self::binary(op, op_span, left, right)?
                }
                Infix::Postfix => self.postfix(left)?,
            };
            if p == prec::CMP && self.infix().is_some_and(|(_, q)| q == prec::CMP) {
                return Err(self.unexpected("'&&' or '||' (comparisons do not chain)"));
            }
        }
        Ok(left)
    }

    /// A prefix operator and its operand, or a primary.
    ///
    /// `-` right before a number makes a negative literal (`-(5)` stays a negation). `!`
    /// where a comparison may start (`min` at most [`prec::NOT`]) takes a comparison:
    /// `!a == b` is `!(a == b)`; where a value is expected (`a == !b`) it takes a value.
    fn prefix(&mut self, min: u8) -> Result<Expr, ExprError> {
        if self.is_punct(Punct::Minus) {
            let op = self.bump().span;
            let number = match self.peek().tok {
                Tok::Int(v) => Some(self.int(v, true)?),
                Tok::Float(v) => Some(Literal::Float(-v)),
                _ => None,
            };
            if let Some(lit) = number {
                let span = op.to(self.bump().span);
                return Ok(Expr::with_spans(ExprKind::Literal(lit), span, span));
            }
            let operand = self.expr(prec::UNARY)?;
            return Self::unary(UnaryOp::Neg, op, operand);
        }
        if self.is_punct(Punct::Bang) || self.is_keyword("not") {
            let op = self.bump().span;
            let operand = self.expr(if min <= prec::NOT {
                prec::NOT
            } else {
                prec::UNARY
            })?;
            return Self::unary(UnaryOp::Not, op, operand);
        }
        self.primary()
    }

    /// `is [not] null`, `[not] in (...)` or `[not] between low and high` after `left`.
    fn postfix(&mut self, left: Expr) -> Result<Expr, ExprError> {
        if self.is_keyword("is") {
            let op_span = self.bump().span;
            let negated = self.is_keyword("not");
            if negated {
                self.bump();
            }
            if !self.is_keyword("null") {
                return Err(self.unexpected("'null'"));
            }
            let end = self.bump().span;
            let function = if negated {
                Function::IsNotNull
            } else {
                Function::IsNull
            };
            let span = left.span().to(end);
            return Expr::checked(
                ExprKind::Call {
                    function,
                    args: vec![left],
                },
                span,
                op_span,
            );
        }
        let op_start = self.peek().span;
        let negated = self.is_keyword("not");
        if negated {
            self.bump();
        }
        if self.is_keyword("in") {
            let op_span = op_start.to(self.bump().span);
            self.in_list(left, negated, op_span)
        } else if self.is_keyword("between") {
            let op_span = op_start.to(self.bump().span);
            self.between(left, negated, op_span)
        } else {
            Err(self.unexpected("'in' or 'between'"))
        }
    }

    fn in_list(&mut self, operand: Expr, negated: bool, op_span: Span) -> Result<Expr, ExprError> {
        self.expect(Punct::LParen, "'(' and a list of literals")?;
        let mut list = vec![self.literal()?];
        while self.is_punct(Punct::Comma) {
            self.bump();
            if self.is_punct(Punct::RParen) {
                break;
            }
            list.push(self.literal()?);
        }
        let end = self.expect(Punct::RParen, "',' or ')'")?.span;
        let span = operand.span().to(end);
        Expr::checked(
            ExprKind::InList {
                operand: Box::new(operand),
                list,
                negated,
            },
            span,
            op_span,
        )
    }

    /// A literal of an `in` list: a number (with an optional `-`), a string, `true`, `false`
    /// or `null`.
    fn literal(&mut self) -> Result<Literal, ExprError> {
        let negative = self.is_punct(Punct::Minus);
        if negative {
            self.bump();
        }
        let lit = match &self.peek().tok {
            Tok::Int(v) => {
                let v = *v;
                self.int(v, negative)?
            }
            Tok::Float(v) => Literal::Float(if negative { -v } else { *v }),
            Tok::Str(s) if !negative => Literal::Str(s.clone()),
            Tok::Ident(_) if !negative => match self.keyword_literal() {
                Some(l) => l,
                None => return Err(self.unexpected("a literal")),
            },
            _ if negative => return Err(self.unexpected("a number")),
            _ => return Err(self.unexpected("a literal")),
        };
        self.bump();
        Ok(lit)
    }

    /// `true`, `false` or `null` at the current token.
    fn keyword_literal(&self) -> Option<Literal> {
        if self.is_keyword("true") {
            Some(Literal::Bool(true))
        } else if self.is_keyword("false") {
            Some(Literal::Bool(false))
        } else if self.is_keyword("null") {
            Some(Literal::Null)
        } else {
            None
        }
    }

    /// The integer literal `v` (negated if `negative`), at the current token.
    fn int(&mut self, v: u128, negative: bool) -> Result<Literal, ExprError> {
        let value = if negative {
            0i128.checked_sub_unsigned(v)
        } else {
            i128::try_from(v).ok()
        };
        match value {
            Some(v) => Ok(Literal::Int(v)),
            None => Err(self.unexpected("a 128-bit integer")),
        }
    }

    fn between(&mut self, operand: Expr, negated: bool, op_span: Span) -> Result<Expr, ExprError> {
        let low = self.expr(prec::ADD)?;
        if !self.is_keyword("and") {
            return Err(self.unexpected("'and' and the upper end"));
        }
        self.bump();
        let high = self.expr(prec::ADD)?;
        let span = operand.span().to(high.span());
        Expr::checked(
            ExprKind::Between {
                operand: Box::new(operand),
                low: Box::new(low),
                high: Box::new(high),
                negated,
            },
            span,
            op_span,
        )
    }

    /// `primary := literal | column | function '(' args ')' | '(' expr ')'`
    fn primary(&mut self) -> Result<Expr, ExprError> {
        let span = self.peek().span;
        let kind = match &self.peek().tok {
            Tok::Int(v) => {
                let v = *v;
                ExprKind::Literal(self.int(v, false)?)
            }
            Tok::Float(v) => ExprKind::Literal(Literal::Float(*v)),
            Tok::Str(s) => ExprKind::Literal(Literal::Str(s.clone())),
            Tok::Quoted(name) => ExprKind::Column(name.clone()),
            Tok::Ident(_) => return self.identifier(),
            Tok::Punct(Punct::LParen) => {
                self.bump();
                let inner = self.expr(prec::OR)?;
                let end = self.expect(Punct::RParen, "')'")?.span;
                return Ok(inner.widened(span.to(end)));
            }
            _ => return Err(self.unexpected("a value")),
        };
        self.bump();
        Ok(Expr::with_spans(kind, span, span))
    }

    /// A keyword literal, a column or a function call, at an identifier.
    fn identifier(&mut self) -> Result<Expr, ExprError> {
        let span = self.peek().span;
        if let Some(lit) = self.keyword_literal() {
            self.bump();
            return Ok(Expr::with_spans(ExprKind::Literal(lit), span, span));
        }
        if KEYWORDS.iter().any(|k| self.is_keyword(k)) {
            return Err(self.unexpected("a value"));
        }
        let Tok::Ident(name) = self.bump().tok else {
            unreachable!("invariant: called at an identifier")
        };
        if self.is_punct(Punct::LParen) {
            return self.call(&name, span);
        }
        Ok(Expr::with_spans(ExprKind::Column(name), span, span))
    }

    /// A call of the function `name` (at `name_span`); the current token is its `(`.
    fn call(&mut self, name: &str, name_span: Span) -> Result<Expr, ExprError> {
        let Some(function) = Function::from_name(name) else {
            return Err(ExprError::UnknownFunction {
                name: name.to_owned(),
                position: name_span.start,
                suggestion: suggest(name, Function::ALL.iter().map(|f| f.name()))
                    .map(str::to_owned),
            });
        };
        self.bump();
        let mut args = Vec::new();
        if !self.is_punct(Punct::RParen) {
            args.push(self.expr(prec::OR)?);
            while self.is_punct(Punct::Comma) {
                self.bump();
                args.push(self.expr(prec::OR)?);
            }
        }
        let end = self.expect(Punct::RParen, "',' or ')'")?.span;
        if args.len() != function.arity() {
            return Err(ExprError::WrongArgumentCount {
                function: function.name(),
                expected: function.arity(),
                found: args.len(),
                position: name_span.start,
            });
        }
        Expr::checked(
            ExprKind::Call { function, args },
            name_span.to(end),
            name_span,
        )
    }
}

/// What an infix token does.
#[derive(Clone, Copy)]
enum Infix {
    Binary(BinaryOp),
    /// `in`, `not in`, `between`, `not between`, `is null`, `is not null`.
    Postfix,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn parse(text: &str) -> Expr {
        Expr::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    /// Parses `text` and prints it back.
    fn canon(text: &str) -> String {
        parse(text).to_string()
    }

    fn err(text: &str) -> String {
        Expr::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn smoke() {
        assert_eq!(
            canon(r#"Price > 100 && Sym in ("AAPL", "MSFT")"#),
            r#"Price > 100 && Sym in ("AAPL", "MSFT")"#
        );
    }

    #[test]
    fn the_brief_examples_parse() {
        for (text, canonical) in [
            (
                "Size >= 1000 || is_null(Venue)",
                "Size >= 1000 || is_null(Venue)",
            ),
            (
                r#"!(Side == "S") && Price * Size > 1e6"#,
                r#"!(Side == "S") && Price * Size > 1000000.0"#,
            ),
            (r#"Sym not in ("X")"#, r#"Sym not in ("X")"#),
            ("Ts >= 1700000000000000000", "Ts >= 1700000000000000000"),
            ("Flag", "Flag"),
            ("Price between 10 and 20", "Price between 10 and 20"),
            ("`odd name` > 3", "`odd name` > 3"),
        ] {
            assert_eq!(canon(text), canonical, "{text}");
        }
    }

    #[test]
    fn keywords_ignore_case_and_have_symbol_spellings() {
        assert_eq!(
            canon("a AND b Or NOT c and x = 1 and y <> 2"),
            "a && b || !c && x == 1 && y != 2"
        );
        assert_eq!(canon("x IS NOT NULL"), "is_not_null(x)");
        assert_eq!(canon("x Is Null"), "is_null(x)");
        assert_eq!(canon("IS_NULL(x)"), "is_null(x)");
        assert_eq!(canon("x NOT IN (1, 2,)"), "x not in (1, 2)");
        assert_eq!(canon("x Not Between 1 AND 2"), "x not between 1 and 2");
        assert_eq!(canon("TRUE || False || NULL"), "true || false || null");
    }

    #[test]
    fn precedence_follows_the_table() {
        let cases = [
            ("a || b && c", "a || b && c"),
            ("(a || b) && c", "(a || b) && c"),
            ("!a && b", "!a && b"),
            ("!a == b", "!(a == b)"),
            ("a == !b", "a == (!b)"),
            ("not a > 1 or b", "!(a > 1) || b"),
            ("a + b * c > d - e % f", "a + b * c > d - e % f"),
            ("(a + b) * c", "(a + b) * c"),
            ("a - (b - c)", "a - (b - c)"),
            ("a - b - c", "a - b - c"),
            ("-a * b", "-a * b"),
            ("-(a * b)", "-(a * b)"),
            ("x > -5", "x > -5"),
            ("x - -5", "x - -5"),
            ("-(5)", "-(5)"),
            ("- 5", "-5"),
            ("--5", "--5"),
            ("-x between -1 and 2 + 3", "-x between -1 and 2 + 3"),
            ("((a))", "a"),
        ];
        for (text, canonical) in cases {
            assert_eq!(canon(text), canonical, "{text}");
            assert_eq!(parse(canonical), parse(text), "{text}");
        }
    }

    #[test]
    fn negative_literals_fold_and_negations_of_literals_do_not() {
        let lit = parse("-5");
        assert_eq!(*lit.kind(), ExprKind::Literal(Literal::Int(-5)));
        assert!(matches!(
            parse("-(5)").kind(),
            ExprKind::Unary {
                op: UnaryOp::Neg,
                ..
            }
        ));
        let min = "-170141183460469231731687303715884105728";
        assert_eq!(
            *parse(min).kind(),
            ExprKind::Literal(Literal::Int(i128::MIN))
        );
        assert_eq!(canon(min), min);
    }

    #[test]
    fn spans_cover_the_text_and_point_at_operators() {
        let e = parse("  (Price + 1) > 100 ");
        assert_eq!(e.span(), Span::new(2, 19));
        assert_eq!(e.op_span(), Span::new(14, 15));
        let ExprKind::Binary { left, .. } = e.kind() else {
            panic!()
        };
        assert_eq!(left.span(), Span::new(2, 13));
        assert_eq!(left.op_span(), Span::new(9, 10));
        let e = parse("Sym not in ('A')");
        assert_eq!(e.op_span(), Span::new(4, 10));
    }

    #[test]
    fn errors_say_where_and_what_was_expected() {
        let cases = [
            ("Price > )", "at 8: expected a value, found ')'"),
            ("Price >", "at 7: expected a value, found the end"),
            ("", "at 0: expected a value, found the end"),
            ("(a > 1", "at 6: expected ')', found the end"),
            ("a > 1)", "at 5: expected an operator or the end, found ')'"),
            ("a b", "at 2: expected an operator or the end, found 'b'"),
            (
                "a < b < c",
                "at 6: expected '&&' or '||' (comparisons do not chain), found '<'",
            ),
            ("a == 1 and", "at 10: expected a value, found the end"),
            (
                "a in 1",
                "at 5: expected '(' and a list of literals, found '1'",
            ),
            ("a in ()", "at 6: expected a literal, found ')'"),
            ("a in (b)", "at 6: expected a literal, found 'b'"),
            ("a in (1 2)", "at 8: expected ',' or ')', found '2'"),
            ("a in (-'x')", "at 7: expected a number, found ''x''"),
            (
                "a between 1",
                "at 11: expected 'and' and the upper end, found the end",
            ),
            ("a is 1", "at 5: expected 'null', found '1'"),
            ("a not 1", "at 6: expected 'in' or 'between', found '1'"),
            ("a and or b", "at 6: expected a value, found 'or'"),
            ("abs(1, 2)", "at 0: abs takes 1 argument, found 2"),
            ("contains(s)", "at 0: contains takes 2 arguments, found 1"),
            (
                "is_nul(x)",
                r#"at 0: no function named "is_nul" (did you mean "is_null"?)"#,
            ),
            ("frobnicate(x)", r#"at 0: no function named "frobnicate""#),
            (") 'abc", "at 0: expected a value, found ')'"),
            (
                "a == 'abc",
                "at 9: expected a closing '\\'' for the string at 5, found the end",
            ),
            (
                "a == #",
                "at 5: expected a value, a column or an operator, found '#'",
            ),
            (
                "x 'a very long string literal indeed'",
                "at 2: expected an operator or the end, found ''a very long string l...'",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(err(text), message, "{text}");
        }
        // The first error wins, even after a lexer error.
        assert_eq!(err("a == ) #"), "at 5: expected a value, found ')'");
    }

    #[test]
    fn nesting_is_bounded() {
        let parens = |n| format!("{}a{}", "(".repeat(n), ")".repeat(n));
        assert!(matches!(
            Expr::parse(&parens(MAX_NESTING + 5)),
            Err(ExprError::TooDeep {
                limit: MAX_NESTING,
                ..
            })
        ));
        assert!(Expr::parse(&parens(MAX_NESTING - 1)).is_ok());
        let bangs = |n| format!("{}a", "!".repeat(n));
        assert!(matches!(
            Expr::parse(&bangs(MAX_NESTING + 1)),
            Err(ExprError::TooDeep { .. })
        ));
        assert_eq!(parse(&bangs(MAX_NESTING - 1)).depth(), MAX_NESTING);
        // A chain is a loop in the parser, bounded by the depth of the tree it makes.
        let chain = |n| vec!["a"; n].join(" || ");
        assert_eq!(parse(&chain(MAX_DEPTH)).depth(), MAX_DEPTH);
        assert!(matches!(
            Expr::parse(&chain(MAX_DEPTH + 1)),
            Err(ExprError::TooDeep {
                limit: MAX_DEPTH,
                ..
            })
        ));
    }

    // Random trees print and parse back to themselves.

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => "[A-Za-z_][A-Za-z0-9_]{0,6}",
            1 => "[ -~]{0,6}",
            1 => Just("odd`name".to_owned()),
            1 => Just("and".to_owned()),
            1 => Just("NULL".to_owned()),
            1 => Just("is_null".to_owned()),
        ]
    }

    fn literal() -> impl Strategy<Value = Literal> {
        prop_oneof![
            Just(Literal::Null),
            any::<bool>().prop_map(Literal::Bool),
            any::<i64>().prop_map(|v| Literal::Int(v.into())),
            any::<i128>().prop_map(Literal::Int),
            any::<f64>()
                .prop_filter("finite", |v| v.is_finite())
                .prop_map(Literal::Float),
            (-1e3..1e3f64).prop_map(Literal::Float),
            "\\PC{0,6}".prop_map(Literal::Str),
            "[\"'\\\\\n\t\u{0}\u{7f}a]{0,4}".prop_map(Literal::Str),
        ]
    }

    fn expr() -> impl Strategy<Value = Expr> {
        let leaf = prop_oneof![
            literal().prop_map(|l| Expr::new(ExprKind::Literal(l))),
            name().prop_map(|n| Expr::new(ExprKind::Column(n))),
        ];
        leaf.prop_recursive(6, 64, 3, |inner| {
            let op = prop_oneof![
                Just(BinaryOp::Or),
                Just(BinaryOp::And),
                Just(BinaryOp::Eq),
                Just(BinaryOp::NotEq),
                Just(BinaryOp::Lt),
                Just(BinaryOp::LtEq),
                Just(BinaryOp::Gt),
                Just(BinaryOp::GtEq),
                Just(BinaryOp::Add),
                Just(BinaryOp::Sub),
                Just(BinaryOp::Mul),
                Just(BinaryOp::Div),
                Just(BinaryOp::Rem),
            ];
            let function = prop::sample::select(Function::ALL.to_vec());
            prop_oneof![
                (
                    prop_oneof![Just(UnaryOp::Not), Just(UnaryOp::Neg)],
                    inner.clone()
                )
                    .prop_map(|(op, e)| Expr::new(ExprKind::Unary {
                        op,
                        operand: Box::new(e)
                    })),
                (op, inner.clone(), inner.clone()).prop_map(|(op, l, r)| Expr::new(
                    ExprKind::Binary {
                        op,
                        left: Box::new(l),
                        right: Box::new(r)
                    }
                )),
                (
                    inner.clone(),
                    prop::collection::vec(literal(), 1..4),
                    any::<bool>()
                )
                    .prop_map(|(e, list, negated)| Expr::new(ExprKind::InList {
                        operand: Box::new(e),
                        list,
                        negated
                    })),
                (inner.clone(), inner.clone(), inner.clone(), any::<bool>()).prop_map(
                    |(e, low, high, negated)| Expr::new(ExprKind::Between {
                        operand: Box::new(e),
                        low: Box::new(low),
                        high: Box::new(high),
                        negated
                    })
                ),
                (function, prop::collection::vec(inner, 2)).prop_map(|(function, mut args)| {
                    args.truncate(function.arity());
                    Expr::new(ExprKind::Call { function, args })
                }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn printed_expressions_parse_back_to_the_same_tree(e in expr()) {
            let text = e.to_string();
            let back = Expr::parse(&text).map_err(|err| {
                TestCaseError::fail(format!("{text}: {err}"))
            })?;
            prop_assert_eq!(&back, &e, "{}", text);
            prop_assert_eq!(back.to_string(), text);
        }

        #[test]
        fn parsing_never_panics(text in "[ -~]{0,40}") {
            let _ = Expr::parse(&text);
        }
    }
}
