//! A word-count pipeline of three components on one container thread:
//!
//! ```text
//! main ──Line──▶ Splitter ──Words──▶ Tally ◀──Top── main
//! ```
//!
//! The splitter chokes on corrupt lines (it panics). Supervision restarts it from its
//! factory, its address stays valid, and the `ask` for the bad line fails with a typed
//! error, so the pipeline keeps going. Run it with
//! `cargo run --release --example wordcount`.

// An example prints its results.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::time::Duration;

use tern::prelude::*;

const TEXT: &str = "the quick brown fox jumps over the lazy dog
a journey of a thousand miles begins with a single step
#corrupt \u{0}\u{0}\u{0}
to be or not to be that is the question
all that glitters is not gold
#corrupt the fox again
the early bird catches the worm but the second mouse gets the cheese";

/// Counts words. Its state lives as long as the pipeline.
#[derive(Default)]
struct Tally {
    counts: BTreeMap<String, u64>,
}
impl Actor for Tally {}

struct Words(Vec<String>);
impl Handler<Words> for Tally {
    type Reply = ();
    async fn handle(&mut self, words: Words, _: &mut Context<Self>) {
        for w in words.0 {
            *self.counts.entry(w).or_default() += 1;
        }
    }
}

struct Top(usize);
impl Handler<Top> for Tally {
    type Reply = Vec<(String, u64)>;
    async fn handle(&mut self, top: Top, _: &mut Context<Self>) -> Self::Reply {
        let mut all: Vec<_> = self.counts.iter().map(|(w, n)| (w.clone(), *n)).collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        all.truncate(top.0);
        all
    }
}

/// Splits lines into words and forwards them. Fails on corrupt input.
struct Splitter {
    tally: Addr<Tally>,
}
impl Actor for Splitter {}

struct Line(String);
impl Handler<Line> for Splitter {
    type Reply = usize;
    async fn handle(&mut self, line: Line, _: &mut Context<Self>) -> usize {
        assert!(
            !line.0.starts_with("#corrupt"),
            "corrupt input: {:?}",
            line.0
        );
        let words: Vec<String> = line.0.split_whitespace().map(str::to_lowercase).collect();
        let n = words.len();
        // Waits for room if the tally is busy: backpressure, not loss.
        if let Err(e) = self.tally.tell(Words(words)).await {
            eprintln!("tally refused words: {e}");
        }
        n
    }
}

fn main() -> anyhow::Result<()> {
    tern_examples::init_logging();
    // Failures are reported through typed errors below; keep panic noise off stderr.
    std::panic::set_hook(Box::new(|_| {}));

    let rt = Runtime::new()?;
    rt.block_on(async {
        let tally = spawn(Tally::default());
        let splitter = {
            let tally = tally.clone();
            build(move || Splitter {
                tally: tally.clone(),
            })
            .mailbox(16)
            .supervision(Supervision {
                restart: Restart::OnFailure,
                backoff_initial: Duration::from_millis(5),
                ..Supervision::default()
            })
            .spawn()
        };

        let (mut words, mut failed) = (0, 0);
        for (i, line) in TEXT.lines().enumerate() {
            match splitter.ask(Line(line.to_owned())).await {
                Ok(n) => words += n,
                Err(e) => {
                    failed += 1;
                    println!("line {}: {e}", i + 1);
                }
            }
        }
        let stats = splitter.stats();
        println!(
            "lines: {}, words: {words}, failed lines: {failed}, splitter restarts: {}",
            TEXT.lines().count(),
            stats.restarts
        );
        let top = tally.ask(Top(5)).await?;
        let top: Vec<String> = top.iter().map(|(w, n)| format!("{w}={n}")).collect();
        println!("top words: {}", top.join(" "));
        anyhow::ensure!(
            stats.restarts == failed,
            "every failure should restart the splitter"
        );
        Ok(())
    })
}
