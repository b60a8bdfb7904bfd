//! Countdown verifier: an arithmetic expression over given numbers (each used at most once) that
//! evaluates exactly to the target. Gold strings are written `target:n1,n2,...`.

/// Parses `target:n1,n2,...`.
pub fn parse_gold(gold: &str) -> Option<(i64, Vec<i64>)> {
    let (t, ns) = gold.split_once(':')?;
    let nums = ns
        .split(',')
        .map(|n| n.trim().parse().ok())
        .collect::<Option<Vec<i64>>>()?;
    Some((t.trim().parse().ok()?, nums))
}

/// True when `expr` uses only `+ - * /`, parentheses and numbers from `numbers` (each at most
/// once), divides exactly, and equals `target`.
pub fn check(expr: &str, target: i64, numbers: &[i64]) -> bool {
    let mut p = Parser {
        s: expr.as_bytes(),
        i: 0,
        used: vec![],
    };
    let Some(v) = p.expr() else { return false };
    p.skip_ws();
    if p.i != p.s.len() || v != target {
        return false;
    }
    let mut avail = numbers.to_vec();
    p.used.iter().all(|u| match avail.iter().position(|a| a == u) {
        Some(k) => {
            avail.swap_remove(k);
            true
        }
        None => false,
    })
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    used: Vec<i64>,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i] == b' ' {
            self.i += 1;
        }
    }
    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.i).copied()
    }
    fn expr(&mut self) -> Option<i64> {
        let mut v = self.term()?;
        while let Some(op @ (b'+' | b'-')) = self.peek() {
            self.i += 1;
            let r = self.term()?;
            v = if op == b'+' {
                v.checked_add(r)?
            } else {
                v.checked_sub(r)?
            };
        }
        Some(v)
    }
    fn term(&mut self) -> Option<i64> {
        let mut v = self.atom()?;
        while let Some(op @ (b'*' | b'/')) = self.peek() {
            self.i += 1;
            let r = self.atom()?;
            v = if op == b'*' {
                v.checked_mul(r)?
            } else if r != 0 && v % r == 0 {
                v / r
            } else {
                return None;
            };
        }
        Some(v)
    }
    fn atom(&mut self) -> Option<i64> {
        match self.peek()? {
            b'(' => {
                self.i += 1;
                let v = self.expr()?;
                (self.peek()? == b')').then(|| self.i += 1)?;
                Some(v)
            }
            c if c.is_ascii_digit() => {
                let start = self.i;
                while self.i < self.s.len() && self.s[self.i].is_ascii_digit() && self.i - start < 12 {
                    self.i += 1;
                }
                let n: i64 = std::str::from_utf8(&self.s[start..self.i]).ok()?.parse().ok()?;
                self.used.push(n);
                Some(n)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_and_invalid_equations() {
        assert!(check("3*5+7", 22, &[3, 5, 7]));
        assert!(check("(7-3)*5", 20, &[3, 5, 7]));
        assert!(check("7+5", 12, &[3, 5, 7]), "not every number must be used");
        assert!(!check("7+7+8", 22, &[3, 5, 7]), "7 used twice, 8 not given");
        assert!(!check("7/2", 3, &[7, 2]), "inexact division");
        assert!(!check("3*5+7)", 22, &[3, 5, 7]));
        assert!(!check("", 0, &[]));
        assert_eq!(parse_gold("22:3,5,7"), Some((22, vec![3, 5, 7])));
    }
}
