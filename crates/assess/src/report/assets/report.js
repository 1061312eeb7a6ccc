// zt4ai HTML report: fills the findings table from the embedded report, filters
// it and shows the selected result's details. Inlined into the page by
// report/html.rs.
//
// Every string in the report is user-controlled: the DOM is built with
// createElement and textContent only, never by parsing data as HTML.
(function () {
  "use strict";

  var STATUS_RANK = { failed: 0, investigate: 1, manual: 2, skipped: 3, passed: 4 };
  var SEVERITY_RANK = { critical: 0, high: 1, medium: 2, low: 3 };
  var STATUS_TITLE = {
    failed: "Failed",
    investigate: "Investigate",
    passed: "Passed",
    skipped: "Skipped",
    manual: "Manual"
  };

  function readJson(id) {
    var element = document.getElementById(id);
    if (!element) {
      throw new Error("the page has no #" + id);
    }
    return JSON.parse(element.textContent);
  }

  // A new element with a class and text (both optional).
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) {
      node.removeChild(node.firstChild);
    }
  }

  // Appends text in which each pair of backticks marks code (messages and the
  // catalogue quote names that way) as text nodes and <code> elements.
  function appendRich(parent, text) {
    var parts = String(text).split("`");
    var pending = parts[0];
    var i = 1;
    while (i < parts.length) {
      if (i + 1 < parts.length && parts[i] !== "") {
        if (pending) {
          parent.appendChild(document.createTextNode(pending));
        }
        parent.appendChild(el("code", "", parts[i]));
        pending = parts[i + 1];
        i += 2;
      } else {
        pending += "`" + parts[i];
        i += 1;
      }
    }
    if (pending) {
      parent.appendChild(document.createTextNode(pending));
    }
    return parent;
  }

  function rich(tag, className, text) {
    return appendRich(el(tag, className), text);
  }

  function statusBadge(status) {
    return el("span", "badge status-" + status, STATUS_TITLE[status] || status);
  }

  function severityBadge(severity) {
    return el("span", "badge sev-" + severity, severity);
  }

  // "file:line", "file" or "" for a piece of evidence.
  function location(evidence) {
    if (!evidence.file) {
      return "";
    }
    return evidence.line ? evidence.file + ":" + evidence.line : evidence.file;
  }

  var report = readJson("report-data");
  var labels = readJson("report-labels");
  if (!report || !Array.isArray(report.results)) {
    throw new Error("the embedded report has no results");
  }

  function pillarTitle(id) {
    return (labels.pillars && labels.pillars[id]) || id;
  }

  // Results with what the filters need, most pressing first.
  var items = report.results.map(function (result, index) {
    var evidence = Array.isArray(result.evidence) ? result.evidence : [];
    var haystack = [result.control, result.title, result.summary, result.remediation, result.check || "", pillarTitle(result.pillar)];
    evidence.forEach(function (e) {
      haystack.push(e.message, e.file || "", e.field || "", location(e));
    });
    return {
      result: result,
      index: index,
      evidence: evidence,
      haystack: haystack.join("\n").toLowerCase(),
      row: null
    };
  });
  items.sort(function (a, b) {
    return (STATUS_RANK[a.result.status] - STATUS_RANK[b.result.status]) ||
      (SEVERITY_RANK[a.result.severity] - SEVERITY_RANK[b.result.severity]) ||
      (a.index - b.index);
  });

  var body = document.getElementById("findings-body");
  var details = document.getElementById("details-body");
  var count = document.getElementById("findings-count");
  var statusBoxes = Array.prototype.slice.call(document.querySelectorAll("#filter-status input[type=checkbox]"));
  var pillarSelect = document.getElementById("filter-pillar");
  var severitySelect = document.getElementById("filter-severity");
  var search = document.getElementById("filter-search");
  var emptyRow = null;
  var selected = null;

  function showDetails(item) {
    var r = item.result;
    clear(details);
    var heading = el("h3");
    heading.appendChild(el("code", "", r.control));
    heading.appendChild(document.createTextNode(" " + r.title));
    details.appendChild(heading);

    var badges = el("div", "badges");
    badges.appendChild(statusBadge(r.status));
    badges.appendChild(severityBadge(r.severity));
    badges.appendChild(el("span", "badge", pillarTitle(r.pillar)));
    details.appendChild(badges);

    if (r.summary) {
      details.appendChild(rich("p", "summary", r.summary));
    }
    if (r.check) {
      var check = el("p", "muted", "Check: ");
      check.appendChild(el("code", "", r.check));
      details.appendChild(check);
    }

    details.appendChild(el("h4", "", "Evidence"));
    if (item.evidence.length === 0) {
      details.appendChild(el("p", "muted", "No evidence recorded."));
    } else {
      var list = el("ul", "evidence");
      item.evidence.forEach(function (e) {
        var li = el("li", e.problem ? "problem" : "context");
        var where = location(e);
        if (where || e.field) {
          var line = el("span", "where");
          if (where) {
            line.appendChild(el("code", "loc", where));
          }
          if (e.field) {
            if (where) {
              line.appendChild(document.createTextNode(" "));
            }
            line.appendChild(el("code", "field", e.field));
          }
          li.appendChild(line);
        }
        li.appendChild(rich("span", "message", e.message));
        if (!e.problem) {
          li.appendChild(el("span", "muted", " (context)"));
        }
        list.appendChild(li);
      });
      details.appendChild(list);
    }

    if (r.remediation && r.status !== "passed") {
      details.appendChild(el("h4", "", "Remediation"));
      details.appendChild(rich("p", "remediation", r.remediation));
    }
  }

  function select(item) {
    if (selected && selected.row) {
      selected.row.setAttribute("aria-selected", "false");
    }
    selected = item;
    item.row.setAttribute("aria-selected", "true");
    showDetails(item);
  }

  function buildRow(item) {
    var r = item.result;
    var row = el("tr", "result");
    row.tabIndex = 0;
    row.setAttribute("aria-selected", "false");
    row.dataset.index = String(item.index);
    row.dataset.control = r.control;
    row.dataset.status = r.status;

    var status = el("td");
    status.appendChild(statusBadge(r.status));
    row.appendChild(status);
    var severity = el("td");
    severity.appendChild(severityBadge(r.severity));
    row.appendChild(severity);
    var control = el("td", "control");
    control.appendChild(el("code", "", r.control));
    row.appendChild(control);
    row.appendChild(el("td", "title", r.title));
    row.appendChild(el("td", "pillar", pillarTitle(r.pillar)));
    row.appendChild(el("td", "num", item.evidence.length));

    row.addEventListener("click", function () {
      select(item);
      writeAddress();
    });
    row.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        select(item);
        writeAddress();
      }
    });
    return row;
  }

  // The filters and the selection can come from the address, so that a view
  // can be shared or bookmarked:
  //   report.html#findings?status=failed,investigate&pillar=access&severity=high&q=word&select=ZTAI-AC-01
  var HASH_PREFIX = "#findings?";

  function readAddress() {
    var hash = window.location.hash || "";
    if (hash.indexOf(HASH_PREFIX) !== 0) {
      return null;
    }
    var params = new URLSearchParams(hash.slice(HASH_PREFIX.length));
    if (params.has("status")) {
      var wanted = params.get("status").split(",");
      statusBoxes.forEach(function (box) {
        box.checked = wanted.indexOf(box.value) !== -1;
      });
    }
    if (params.has("pillar") && pillarSelect) {
      pillarSelect.value = params.get("pillar");
    }
    if (params.has("severity") && severitySelect) {
      severitySelect.value = params.get("severity");
    }
    if (params.has("q") && search) {
      search.value = params.get("q");
    }
    return params.get("select");
  }

  function writeAddress() {
    var params = new URLSearchParams();
    var checked = statusBoxes.filter(function (box) { return box.checked; });
    if (checked.length !== statusBoxes.length) {
      params.set("status", checked.map(function (box) { return box.value; }).join(","));
    }
    if (pillarSelect && pillarSelect.value) {
      params.set("pillar", pillarSelect.value);
    }
    if (severitySelect && severitySelect.value) {
      params.set("severity", severitySelect.value);
    }
    if (search && search.value) {
      params.set("q", search.value);
    }
    if (selected) {
      params.set("select", selected.result.control);
    }
    var query = params.toString();
    try {
      window.history.replaceState(null, "", query ? HASH_PREFIX + query : window.location.pathname + window.location.search);
    } catch (e) {
      // Some viewers (sandboxed frames) refuse history changes: the address just stays.
    }
  }

  function applyFilters() {
    var statuses = {};
    statusBoxes.forEach(function (box) {
      statuses[box.value] = box.checked;
    });
    var pillar = pillarSelect ? pillarSelect.value : "";
    var severity = severitySelect ? severitySelect.value : "";
    var words = search ? search.value.toLowerCase().split(/\s+/).filter(Boolean) : [];
    var shown = 0;
    items.forEach(function (item) {
      var r = item.result;
      var visible = statuses[r.status] !== false &&
        (!pillar || r.pillar === pillar) &&
        (!severity || r.severity === severity) &&
        words.every(function (word) { return item.haystack.indexOf(word) !== -1; });
      item.row.hidden = !visible;
      if (visible) {
        shown += 1;
      }
    });
    emptyRow.hidden = shown !== 0;
    count.textContent = "Showing " + shown + " of " + items.length + " results";
  }

  function onFilterChange() {
    applyFilters();
    writeAddress();
  }

  items.forEach(function (item) {
    item.row = buildRow(item);
    body.appendChild(item.row);
  });
  emptyRow = el("tr", "empty");
  var emptyCell = el("td", "", "No results match the filters.");
  emptyCell.colSpan = 6;
  emptyRow.appendChild(emptyCell);
  body.appendChild(emptyRow);

  statusBoxes.forEach(function (box) {
    box.addEventListener("change", onFilterChange);
  });
  [pillarSelect, severitySelect].forEach(function (control) {
    if (control) {
      control.addEventListener("change", onFilterChange);
    }
  });
  if (search) {
    search.addEventListener("input", onFilterChange);
  }
  var form = document.getElementById("filters");
  if (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
    });
  }

  // The selection from the address if it names a result, else the first one shown.
  var wanted = readAddress();
  applyFilters();
  var first = items.filter(function (item) { return item.result.control === wanted; })[0] ||
    items.filter(function (item) { return !item.row.hidden; })[0];
  if (first) {
    select(first);
  }
  document.body.dataset.ready = "1";
})();
