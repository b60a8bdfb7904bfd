//! Seeded synthetic tasks with a difficulty knob. Problem `i` of a task is a pure function of
//! (seed, i), so any cursor position regenerates exactly.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{Problem, ProblemSource};

/// A synthetic task and its difficulty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SyntheticTask {
    /// Chains of `+`/`-` (and `*` when `multiply`) over `operands` numbers of up to `digits`
    /// digits, solved one operation per line: `47+38=85\n85-25=60\n#### 60`.
    Arithmetic {
        /// Largest number of digits per operand (difficulty).
        digits: u32,
        /// Operands per problem (2 or more).
        operands: usize,
        /// Allow `*` (single-digit right operand, to keep products short).
        #[serde(default)]
        multiply: bool,
        /// Allow `-` (default true); `false` gives addition-only chains.
        #[serde(default = "yes")]
        subtract: bool,
        /// A flawed teacher: the *worked solution* of an addition whose ones digits carry drops the
        /// carry (writes r − 10) with this probability, and continues from the wrong value. The
        /// gold answer stays correct, so a verifier can teach the model to beat its teacher.
        /// 0 (default) gives a perfect teacher.
        #[serde(default)]
        teacher_carry_error: f64,
    },
    /// Reach `target` from the given numbers with `+ - *`; the solution is the equation.
    Countdown {
        /// How many numbers are given (difficulty).
        numbers: usize,
        /// Largest given number.
        max_number: i64,
    },
}

impl SyntheticTask {
    /// Name used as `data_source`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Arithmetic { .. } => "arithmetic",
            Self::Countdown { .. } => "countdown",
        }
    }

    /// Range checks; messages name the field.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Self::Arithmetic {
                digits,
                operands,
                teacher_carry_error,
                ..
            } => {
                if !(0.0..=1.0).contains(teacher_carry_error) {
                    return Err(format!(
                        "teacher_carry_error must be in [0, 1], got {teacher_carry_error}"
                    ));
                }
                if !(1..=9).contains(digits) {
                    return Err(format!("digits must be in 1..=9, got {digits}"));
                }
                if *operands < 2 {
                    return Err(format!("operands must be >= 2, got {operands}"));
                }
            }
            Self::Countdown { numbers, max_number } => {
                if !(2..=6).contains(numbers) {
                    return Err(format!("numbers must be in 2..=6, got {numbers}"));
                }
                if !(2..=1000).contains(max_number) {
                    return Err(format!("max_number must be in 2..=1000, got {max_number}"));
                }
            }
        }
        Ok(())
    }

    /// Problem `i` under `seed`.
    pub fn generate(&self, seed: u64, i: u64) -> Problem {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(i);
        match *self {
            Self::Arithmetic {
                digits,
                operands,
                multiply,
                subtract,
                teacher_carry_error,
            } => {
                let ops: Vec<char> = ['+', '-', '*']
                    .into_iter()
                    .filter(|&o| o == '+' || (o == '-' && subtract) || (o == '*' && multiply))
                    .collect();
                arithmetic(&mut rng, digits, operands, &ops, teacher_carry_error)
            }
            Self::Countdown { numbers, max_number } => countdown(&mut rng, numbers, max_number),
        }
    }
}

fn arithmetic(rng: &mut ChaCha8Rng, digits: u32, operands: usize, ops: &[char], carry_error: f64) -> Problem {
    let max = 10i64.pow(digits) - 1;
    let mut acc = rng.random_range(0..=max);
    let mut question = acc.to_string();
    let mut lines = vec![];
    let mut taught = acc; // the teacher's running value (differs from `acc` after a dropped carry)
    for _ in 1..operands {
        let op = ops[rng.random_range(0..ops.len())];
        let b = if op == '*' {
            rng.random_range(0..=9)
        } else {
            rng.random_range(0..=max)
        };
        let r = match op {
            '+' => acc + b,
            '-' => acc - b,
            _ => acc * b,
        };
        // Left-to-right evaluation; with `*` the question is parenthesised to say so.
        question = if op == '*' && question.contains(['+', '-']) {
            format!("({question}){op}{b}")
        } else {
            format!("{question}{op}{b}")
        };
        // The flaw is drawn at every step, so the problems do not depend on the error rate.
        let flaw = rng.random::<f64>() < carry_error;
        let t = match op {
            '+' => taught + b,
            '-' => taught - b,
            _ => taught * b,
        };
        let carries = op == '+' && taught >= 0 && (taught % 10) + (b % 10) >= 10;
        let t = if carries && flaw { t - 10 } else { t };
        lines.push(format!("{taught}{op}{b}={t}"));
        taught = t;
        acc = r;
    }
    lines.push(format!("#### {taught}"));
    Problem {
        question: format!("{question}=?"),
        answer: acc.to_string(),
        solution: lines.join("\n"),
        data_source: "arithmetic".into(),
        ..Default::default()
    }
}

fn countdown(rng: &mut ChaCha8Rng, n: usize, max_number: i64) -> Problem {
    let nums: Vec<i64> = (0..n).map(|_| rng.random_range(1..=max_number)).collect();
    // Target: a random left-to-right combination of all numbers (so it is reachable).
    let mut acc = nums[0];
    let mut expr = nums[0].to_string();
    let mut lines = vec![];
    for &b in &nums[1..] {
        let op = ['+', '-', '*'][rng.random_range(0..3)];
        let r = match op {
            '+' => acc + b,
            '-' => acc - b,
            _ => acc * b,
        };
        lines.push(format!("{acc}{op}{b}={r}"));
        expr = if op == '*' && expr.contains(['+', '-']) {
            format!("({expr})*{b}")
        } else {
            format!("{expr}{op}{b}")
        };
        acc = r;
    }
    lines.push(format!("#### {expr}"));
    let list = nums.iter().map(i64::to_string).collect::<Vec<_>>();
    Problem {
        question: format!("use {} to make {acc}", list.join(" ")),
        answer: format!("{acc}:{}", list.join(",")),
        solution: lines.join("\n"),
        data_source: "countdown".into(),
        ..Default::default()
    }
}

fn yes() -> bool {
    true
}

/// A synthetic task as a problem source, with its seed.
#[derive(Debug, Clone)]
pub struct SyntheticSource {
    /// The task.
    pub task: SyntheticTask,
    /// Its seed (train and held-out eval use different seeds).
    pub seed: u64,
}

impl ProblemSource for SyntheticSource {
    fn get(&self, i: u64) -> Problem {
        self.task.generate(self.seed, i)
    }
    fn len(&self) -> Option<usize> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use entrl_rewards::{Extractor, RewardFn, answers_equal, countdown};

    #[test]
    fn arithmetic_solutions_are_correct_and_deterministic() {
        let t = SyntheticTask::Arithmetic {
            digits: 2,
            operands: 3,
            multiply: true,
            subtract: true,
            teacher_carry_error: 0.0,
        };
        for i in 0..200 {
            let p = t.generate(5, i);
            assert_eq!(p, t.generate(5, i));
            let got = Extractor::Hash.extract(&p.solution).unwrap();
            assert!(answers_equal(&got, &p.answer), "{p:?}");
            // check the arithmetic of every line
            for line in p.solution.lines().filter(|l| !l.starts_with("####")) {
                let (lhs, rhs) = line.split_once('=').unwrap();
                let v = eval_left_to_right(lhs);
                assert_eq!(v.to_string(), rhs, "{line}");
            }
        }
        assert_ne!(t.generate(5, 0), t.generate(6, 0));
    }

    fn eval_left_to_right(s: &str) -> i64 {
        // "a<op>b" with a possibly negative
        let idx = s[1..].find(['+', '-', '*']).unwrap() + 1;
        let (a, b) = (s[..idx].parse::<i64>().unwrap(), s[idx + 1..].parse::<i64>().unwrap());
        match &s[idx..=idx] {
            "+" => a + b,
            "-" => a - b,
            _ => a * b,
        }
    }

    #[test]
    fn flawed_teacher_drops_carries_but_gold_stays_right() {
        let good = SyntheticTask::Arithmetic {
            digits: 1,
            operands: 2,
            multiply: false,
            subtract: true,
            teacher_carry_error: 0.0,
        };
        let bad = SyntheticTask::Arithmetic {
            digits: 1,
            operands: 2,
            multiply: false,
            subtract: true,
            teacher_carry_error: 1.0,
        };
        let (mut carrying, mut wrong) = (0, 0);
        for i in 0..300 {
            let (g, b) = (good.generate(2, i), bad.generate(2, i));
            assert_eq!(
                (g.question.clone(), g.answer.clone()),
                (b.question.clone(), b.answer.clone()),
                "same problem, same gold"
            );
            let taught = Extractor::Hash.extract(&b.solution).unwrap();
            if g.question.contains('+') && g.answer.parse::<i64>().unwrap() >= 10 {
                carrying += 1;
                wrong += usize::from(!answers_equal(&taught, &b.answer));
            } else {
                assert!(answers_equal(&taught, &b.answer), "{b:?}");
            }
        }
        assert!(carrying > 30 && wrong == carrying, "{wrong}/{carrying}");
    }

    #[test]
    fn countdown_solutions_verify() {
        let t = SyntheticTask::Countdown {
            numbers: 3,
            max_number: 12,
        };
        for i in 0..200 {
            let p = t.generate(1, i);
            let (target, nums) = countdown::parse_gold(&p.answer).unwrap();
            let expr = Extractor::Hash.extract(&p.solution).unwrap();
            assert!(countdown::check(&expr, target, &nums), "{p:?}");
            assert_eq!(RewardFn::Countdown.score(&p.solution, &p.answer, 0), 1.0);
        }
    }
}
