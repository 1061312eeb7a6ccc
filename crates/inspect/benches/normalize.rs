//! Throughput of `normalize::views` on 64 KiB of text of three kinds:
//!
//! * `plain_ascii` — English prose in ASCII, no markup, no encoded runs: the
//!   fast path (target ≥ 1 GB/s);
//! * `html_page` — an HTML page with head, scripts, styles, navigation, links,
//!   images with `src` but no hidden parts (target ≥ 200 MB/s);
//! * `mixed_unicode` — French, German and Russian prose with a few English
//!   sentences: the full Unicode path, with the look-alike pass.
//!
//! Run: `taskset -c 0 cargo bench -p zt4ai-inspect --bench normalize`.

#![allow(missing_docs, reason = "benchmark")]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use zt4ai_inspect::normalize::views;

const SIZE: usize = 64 * 1024;

/// Repeats `parts` (cycling) until `SIZE` bytes, cut on a char boundary.
fn fill(parts: &[&str]) -> String {
    let mut s = String::with_capacity(SIZE + 1024);
    let mut i = 0;
    while s.len() < SIZE {
        s.push_str(parts[i % parts.len()]);
        i += 1;
    }
    let mut end = SIZE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s
}

fn plain_ascii() -> String {
    fill(&[
        "The quarterly report shows that revenue grew by 12 percent compared to the same period last year. ",
        "Most of the growth came from the new subscription plans, which were introduced in March and ",
        "adopted faster than expected by small businesses in Europe and North America.\n",
        "Operating costs rose as well, mainly because of hiring in the support and infrastructure teams; ",
        "the board expects them to stabilise over the next two quarters. Please review the attached ",
        "figures before Thursday's meeting and send your questions to the finance team at finance@example.com.\n",
        "Action items: (1) confirm the budget for Q3, (2) schedule the customer interviews, ",
        "(3) update the roadmap document in the shared drive under /projects/2024/roadmap.md.\n\n",
    ])
}

fn html_page() -> String {
    let head = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
        <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
        <title>Acme Widgets – Product catalogue</title>\n\
        <link rel=\"stylesheet\" href=\"/assets/css/main.3f9a2c.css\">\n\
        <style>body{font-family:system-ui,sans-serif;margin:0}.nav a{color:#0645ad;padding:4px 8px}</style>\n\
        <script src=\"/assets/js/app.8d1e44.js\" defer></script>\n\
        <script>window.dataLayer=window.dataLayer||[];function gtag(){dataLayer.push(arguments);}gtag('js',new Date());</script>\n\
        </head>\n<body>\n<header class=\"site-header\"><nav class=\"nav\"><a href=\"/\">Home</a> \
        <a href=\"/products\">Products</a> <a href=\"/about\">About</a> <a href=\"/contact\">Contact</a></nav></header>\n\
        <main id=\"content\">\n";
    let item = "<article class=\"product-card\" data-sku=\"AW-1042\">\n\
        <h2 class=\"product-title\"><a href=\"/products/aw-1042-industrial-widget\">Industrial widget AW-1042</a></h2>\n\
        <img src=\"/images/products/aw-1042.jpg\" width=\"320\" height=\"240\" loading=\"lazy\">\n\
        <p class=\"description\">A sturdy widget for industrial use, with a stainless steel housing and a \
        five-year warranty. Available in three sizes; ships within <strong>two business days</strong>.</p>\n\
        <ul class=\"specs\"><li>Weight: 1.2 kg</li><li>Dimensions: 12 × 8 × 4 cm</li><li>Voltage: 230 V</li></ul>\n\
        <p class=\"price\"><span class=\"amount\">€149.00</span> <a class=\"btn btn-primary\" \
        href=\"/cart/add?sku=AW-1042&amp;qty=1\">Add to cart</a></p>\n</article>\n";
    let mut page = String::from(head);
    while page.len() < SIZE - 200 {
        page.push_str(item);
    }
    page.push_str(
        "</main>\n<footer><p>&copy; 2024 Acme Widgets Ltd.</p></footer>\n</body>\n</html>\n",
    );
    page
}

fn mixed_unicode() -> String {
    fill(&[
        "Le comité a présenté son rapport annuel : les résultats sont meilleurs que prévu, grâce à une \
         hausse des ventes à l'étranger. Néanmoins, les coûts énergétiques restent élevés.\n",
        "Die Geschäftsführung erläuterte die Strategie für das kommende Jahr. Größere Investitionen \
         in die Forschung sind geplant, außerdem soll die Zusammenarbeit mit Universitäten wachsen.\n",
        "Совет директоров обсудил итоги года: выручка выросла, а расходы на логистику снизились. \
         В следующем квартале компания планирует открыть новый офис в Санкт-Петербурге.\n",
        "The English summary follows: revenue grew, costs fell, and the new office opens in the spring.\n",
    ])
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("views");
    for (name, text) in [
        ("plain_ascii", plain_ascii()),
        ("html_page", html_page()),
        ("mixed_unicode", mixed_unicode()),
    ] {
        let v = views(&text);
        assert_eq!(
            v.len(),
            1,
            "{name}: the benchmark texts have nothing hidden or encoded"
        );
        assert_eq!(v[0].text, text, "{name}: nothing to normalise either");
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(name, |b| b.iter(|| views(black_box(&text))));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
