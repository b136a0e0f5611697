//! A paginated scan streamed to a slow consumer on another node, on the deterministic
//! simulator: node `store` holds a table of 100,000 rows and answers a `Scan` with a
//! stream of pages; node `report` consumes one page every 50 ms of virtual time (a slow
//! consumer) with a credit window of 4 pages.
//!
//! ```text
//! cargo run --release --example stream_scan                  # defaults
//! cargo run --release --example stream_scan -- --window 8 --pages 30 --seed 3
//! ```
//!
//! The output shows the flow control at work: the producer computes a page only when
//! the consumer has granted credit for it, so however slow the consumer, the pages
//! computed but not yet consumed never exceed the window, on either node or in between.
//! At the end the consumer drops the stream early, which cancels the scan on the other
//! node at once.

// An example prints its results.
#![allow(clippy::print_stdout)]

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use tern::remote::prelude::*;

/// The table: rows are numbers; a real store would read them from disk.
struct Store {
    rows: u64,
    /// Pages computed so far, shared with the printout.
    computed: Rc<Cell<u64>>,
}
impl Actor for Store {}

/// Scan the table `page_size` rows at a time, from row `from`; the reply is a stream
/// of pages.
#[derive(Debug, Serialize, Deserialize, RemoteMessage)]
#[tern(name = "example.v1.Scan", codec = Postcard, item = Page)]
struct Scan {
    from: u64,
    page_size: u64,
}

/// One page of the scan, and where the next one starts.
#[derive(Debug, Serialize, Deserialize)]
struct Page {
    first: u64,
    rows: Vec<u64>,
    next: Option<u64>,
}

protocol! {
    /// The table as its readers see it: all a reader's binary needs, not `Store`.
    Table { Scan => stream Page }
}

impl Handler<Streaming<Scan>> for Store {
    type Reply = ();
    async fn handle(&mut self, req: Streaming<Scan>, _: &mut Context<Self>) {
        let (scan, out) = req.into_parts();
        // Detached: the scan owns what it needs (a cursor), so the store keeps taking
        // other messages while the slow consumer reads.
        let (rows, computed) = (self.rows, self.computed.clone());
        let pages = futures_lite::stream::unfold(Some(scan.from), move |cursor| {
            let computed = computed.clone();
            async move {
                let first = cursor?;
                // Only runs when the consumer has granted credit for another page.
                let end = (first + scan.page_size).min(rows);
                let page: Vec<u64> = (first..end).map(|r| r * r % 1_000_003).collect();
                computed.set(computed.get() + 1);
                let next = (end < rows).then_some(end);
                Some((
                    Page {
                        first,
                        rows: page,
                        next,
                    },
                    next,
                ))
            }
        });
        out.detach(pages);
    }
}

struct Args {
    seed: u64,
    window: u32,
    pages: u64,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        seed: 1,
        window: 4,
        pages: 20,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--seed" => a.seed = value.parse()?,
            "--window" => a.window = value.parse()?,
            "--pages" => a.pages = value.parse()?,
            other => bail!("unknown flag {other:?} (--seed N, --window N, --pages N)"),
        }
    }
    Ok(a)
}

fn main() -> anyhow::Result<()> {
    let args = args()?;
    let mut world = World::new(args.seed)?;
    let [(store, ts), (report, tr)] = sim_nodes(&mut world, ["store", "report"])?;
    let computed = Rc::new(Cell::new(0));
    let seen = computed.clone();
    world
        .spawn_on(store, async move {
            let node = Node::start(NodeConfig::new("store").peers(["report"]), ts)?;
            let table = spawn(Store {
                rows: 100_000,
                computed: seen,
            });
            node.export("table", &table)?.serve::<Table>();
            anyhow::Ok(())
        })
        .detach();
    let (window, pages) = (args.window, args.pages);
    let done = world.spawn_on(report, async move {
        let node = Node::start(NodeConfig::new("report").peers(["store"]), tr)?;
        while node.hosts("table").is_empty() {
            time::sleep(Duration::from_millis(5)).await;
        }
        let mut scan = node
            .lookup::<Table>("table")
            .ask_stream(Scan {
                from: 0,
                page_size: 500,
            })
            .credit(window);
        println!("report: scanning with a credit window of {window} pages, one page per 50 ms");
        let mut max_ahead = 0;
        for i in 0..pages {
            let Some(page) = scan.next().await else {
                bail!("the scan ended early");
            };
            let page = page?;
            let ahead = computed.get().saturating_sub(i + 1);
            max_ahead = max_ahead.max(ahead);
            println!(
                "t={:>5} ms  page {:>2}: rows {:>5}..{:>5} (sum {:>10})  computed {:>2}  ahead of the consumer {}  buffered here {}",
                time::now().as_nanos() / 1_000_000,
                i,
                page.first,
                page.first + page.rows.len() as u64,
                page.rows.iter().sum::<u64>(),
                computed.get(),
                ahead,
                scan.buffered(),
            );
            // The slow consumer.
            time::sleep(Duration::from_millis(50)).await;
        }
        let before = computed.get();
        drop(scan);
        time::sleep(Duration::from_millis(100)).await;
        println!(
            "report: dropped the stream after {pages} pages; the store computed {} pages in all ({} after the drop: cancelled)",
            computed.get(),
            computed.get() - before
        );
        println!(
            "report: at most {max_ahead} pages were ever computed ahead of the consumer (window {window}); streams open here: {}",
            node.stats().streams_open,
        );
        anyhow::Ok(max_ahead <= u64::from(window))
    });
    world.run_until(Instant::from_nanos(600_000_000_000));
    let within = world
        .runtime(report)
        .context("report node is down")?
        .block_on(done)
        .context("the report did not finish")??;
    let producing = world
        .runtime(store)
        .context("store node is down")?
        .block_on(async { Node::current().map(|n| n.stats().streams_producing) })
        .context("no node on the store")?;
    println!("store: streams still being produced: {producing}");
    if !within || producing != 0 {
        bail!("the producer ran ahead of the credit window, or was not cancelled");
    }
    println!("ok: memory bounded by the credit window");
    Ok(())
}
