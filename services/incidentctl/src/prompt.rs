//! Filling in an update's template fields (and a review's sections). On a terminal, a missing required
//! field starts prompts for every field of that template not given as a flag
//! (Enter skips an optional one); elsewhere the missing field is a usage
//! error naming its flag. Prompts go to stderr, so stdout stays the result.

use crate::fail::Failure;
use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

/// One template field the user may be asked for.
pub struct Field<'a> {
    pub label: &'static str,
    pub flag: &'static str,
    pub value: &'a mut Option<String>,
}

/// What an update needs: at least one of `one_of` (non-empty), plus the
/// optional fields, plus when the next update comes (updates only).
pub struct Form<'a> {
    pub one_of: Vec<Field<'a>>,
    pub optional: Vec<Field<'a>>,
    pub next_update_in: Option<&'a mut Option<Duration>>,
}

impl Form<'_> {
    fn complete(&self) -> bool {
        self.one_of
            .iter()
            .any(|f| f.value.as_deref().is_some_and(|v| !v.trim().is_empty()))
    }

    fn missing(&self) -> String {
        let flags: Vec<&str> = self.one_of.iter().map(|f| f.flag).collect();
        let fields: Vec<&str> = self.one_of.iter().map(|f| f.label).collect();
        format!(
            "{} is required [{}] (or run it on a terminal to be asked)",
            fields.join(" or ").to_lowercase(),
            flags.join(" or ")
        )
    }

    /// Completes the form from flags alone or by asking; `interactive`
    /// is whether stdin is a terminal and prompts are allowed.
    pub fn fill(mut self, interactive: bool) -> Result<(), Failure> {
        if self.complete() {
            return Ok(());
        }
        if !interactive {
            return Err(Failure::usage(self.missing()));
        }
        let stdin = std::io::stdin();
        let mut input = stdin.lock();
        let mut ask = |label: &str, hint: &str| -> Result<String, Failure> {
            eprint!("{label}{hint}: ");
            let _ = std::io::stderr().flush();
            let mut line = String::new();
            match input.read_line(&mut line) {
                Ok(0) | Err(_) => Err(Failure::usage("cancelled (end of input)")),
                Ok(_) => Ok(line.trim().to_string()),
            }
        };
        let required = self.one_of.len() == 1;
        while !self.complete() {
            for f in self.one_of.iter_mut().filter(|f| f.value.is_none() || required) {
                let hint = if required { "" } else { " (Enter to skip)" };
                let v = ask(f.label, hint)?;
                *f.value = (!v.is_empty()).then_some(v);
            }
            if !self.complete() {
                eprintln!(
                    "{}",
                    self.missing().replace(" (or run it on a terminal to be asked)", "")
                );
                for f in self.one_of.iter_mut() {
                    *f.value = None;
                }
            }
        }
        for f in self.optional.iter_mut().filter(|f| f.value.is_none()) {
            let v = ask(f.label, " (optional)")?;
            *f.value = (!v.is_empty()).then_some(v);
        }
        let Some(next) = self.next_update_in else {
            return Ok(());
        };
        while next.is_none() {
            let v = ask("Next update in", " (e.g. 30m; Enter for the severity's cadence)")?;
            if v.is_empty() {
                break;
            }
            match incidentd_config::parse_duration(&v) {
                Ok(d) => *next = Some(d),
                Err(e) => eprintln!("{e}"),
            }
        }
        Ok(())
    }
}

/// Whether prompts may be shown.
pub fn interactive(no_input: bool) -> bool {
    !no_input && std::io::stdin().is_terminal()
}
