use super::*;

#[test]
fn generation_is_deterministic_and_labels_fall_on_char_boundaries() {
    let a = generate(7, 20, 20);
    let b = generate(7, 20, 20);
    assert_eq!(a.len(), FAMILIES.len() * 40);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.text, y.text);
        assert_eq!(x.labels, y.labels);
    }
    for ex in &a {
        if ex.positive {
            assert!(
                ex.labels.iter().any(|l| family_of(&l.kind) == ex.family),
                "{}: {}",
                ex.family,
                ex.text
            );
        } else {
            assert!(
                ex.labels.iter().all(|l| family_of(&l.kind) != ex.family),
                "{}: {}",
                ex.family,
                ex.text
            );
        }
        for l in &ex.labels {
            assert!(l.span.start < l.span.end && l.span.end <= ex.text.len());
            assert!(ex.text.is_char_boundary(l.span.start) && ex.text.is_char_boundary(l.span.end));
        }
    }
}

#[test]
fn every_type_reaches_95_percent_precision_and_recall() {
    let scanner = SensitiveScanner::new(dictionaries(), [7; 32]).unwrap();
    let examples = generate(20_240_514, 60, 60);
    let (table, misses) = evaluate(&scanner, &examples);
    let mut failures = Vec::new();
    for family in FAMILIES {
        let c = table.get(family).copied().unwrap_or_default();
        assert!(c.recalled + c.missed > 0, "{family} has no labels");
        if c.precision() < 0.95 || c.recall() < 0.95 {
            let examples: Vec<String> = misses
                .iter()
                .filter(|m| m.family == family)
                .take(3)
                .map(|m| {
                    format!(
                        "  {} {:?} in {:?}",
                        m.what,
                        &m.text[m.span.start..m.span.end],
                        m.text
                    )
                })
                .collect();
            failures.push(format!(
                "{family}: precision {:.3} recall {:.3}\n{}",
                c.precision(),
                c.recall(),
                examples.join("\n")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n\n{}",
        failures.join("\n"),
        markdown(&table)
    );
}
