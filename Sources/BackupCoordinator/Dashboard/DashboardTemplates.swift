/// The dashboard's mustache templates and its style sheet. `{{x}}` is HTML-escaped by
/// mustache; `{{{plot}}}` is the one unescaped value, an ``SVGPlot`` that escapes its labels.
extension DashboardPages {
    static let templates: [String: String] = [
        "head": """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
        <title>{{title}} · SCM Backup</title>
        <link rel="stylesheet" href="/style.css"><link rel="icon" href="/favicon.svg" type="image/svg+xml">
        </head><body>
        <header><nav><a href="/">Site</a> <a href="/runs">Runs</a> <a href="/alerts">Alerts{{#firing}} <span class="badge">{{firing}}</span>{{/firing}}</a> <a href="/metrics">Metrics</a></nav>
        <h1>{{title}}</h1><p class="meta">generated {{generated}} · read-only</p></header><main>
        """,
        "foot": "</main></body></html>\n",
        "site": """
        {{> head}}
        {{#empty}}<p>The site has no sources yet.</p>{{/empty}}
        <table class="grid" id="grid"><thead><tr><th>source</th><th>kind</th>{{#columns}}<th><a href="/nodes/{{url}}">{{name}}</a></th>{{/columns}}</tr></thead>
        <tbody>
        {{#rows}}<tr><th><a href="/sources/{{url}}">{{name}}</a>{{#problem}}<div class="problem">{{problem}}</div>{{/problem}}</th><td>{{kind}}</td>{{#cells}}<td class="cell {{state}}" title="{{title}}">{{text}}</td>{{/cells}}</tr>
        {{/rows}}
        </tbody></table>
        <p class="legend">{{#legend}}<span class="cell {{.}}">{{.}}</span> {{/legend}}</p>
        <h2>Nodes</h2>
        <table id="nodes"><thead><tr><th>node</th><th>roles</th><th>state</th><th>disk</th><th>queued</th><th>running</th></tr></thead><tbody>
        {{#nodes}}<tr><td><a href="/nodes/{{url}}">{{name}}</a></td><td>{{roles}}</td><td class="cell {{onlineClass}}">{{online}}</td><td>{{free}}</td><td>{{queued}}</td><td>{{running}}</td></tr>
        {{/nodes}}
        </tbody></table>
        {{> foot}}
        """,
        "source": """
        {{> head}}
        <p>{{kind}} source of <a href="/nodes/{{originURL}}">{{origin}}</a>: newest <span class="cell {{state}}">{{cell}}</span>{{#nextRun}} · next run {{nextRun}}{{/nextRun}}</p>
        {{#refusal}}<p class="problem">{{refusal}}</p>{{/refusal}}
        {{#hold}}<p class="problem">{{hold}}</p>{{/hold}}
        <figure>{{{plot}}}</figure>
        <h2>Artifacts ({{count}})</h2>
        <table id="artifacts"><thead><tr><th>stamp</th><th>made</th><th>size</th><th>revision</th><th>copies</th></tr></thead><tbody>
        {{#artifacts}}<tr><td>{{stamp}}{{#flags}}<div class="problem">{{flags}}</div>{{/flags}}</td><td>{{created}}</td><td>{{size}}</td><td>{{revision}}</td><td>{{#copies}}<div class="copy {{state}}">{{node}}: {{state}}{{#verified}}, verified {{verified}}{{/verified}}{{#problem}} — {{problem}}{{/problem}}</div>{{/copies}}</td></tr>
        {{/artifacts}}
        </tbody></table>
        <h2>Last runs</h2>
        {{> runtable}}
        {{> foot}}
        """,
        "runtable": """
        <table class="runs"><thead><tr><th>run</th><th>trigger</th><th>state</th><th>started</th><th>finished</th><th>tasks</th></tr></thead><tbody>
        {{#runs}}<tr><td><a href="/runs/{{id}}">{{id}}</a></td><td>{{trigger}}{{#by}} by {{by}}{{/by}}</td><td class="cell {{stateClass}}">{{state}}</td><td>{{started}}</td><td>{{finished}}</td><td>{{done}}{{#summary}} · {{summary}}{{/summary}}</td></tr>
        {{/runs}}
        </tbody></table>
        """,
        "node": """
        {{> head}}
        <p>{{roles}} · <span class="cell {{onlineClass}}">{{online}}</span> · {{free}} · {{full}}</p>
        <figure>{{{plot}}}</figure>
        <h2>Recent tasks</h2>
        <table id="tasks"><thead><tr><th>task</th><th>kind</th><th>source</th><th>state</th><th>created</th><th>ended</th><th>error</th></tr></thead><tbody>
        {{#tasks}}<tr><td>{{id}}</td><td>{{kind}}</td><td>{{source}}</td><td class="cell {{stateClass}}">{{state}}</td><td>{{created}}</td><td>{{ended}}</td><td>{{error}}</td></tr>
        {{/tasks}}
        </tbody></table>
        {{> foot}}
        """,
        "runs": """
        {{> head}}
        {{> runtable}}
        {{> foot}}
        """,
        "run": """
        {{> head}}
        <p>{{trigger}}{{#by}} by {{by}}{{/by}} · <span class="cell {{stateClass}}">{{state}}</span> · started {{started}}{{#finished}} · finished {{finished}}{{/finished}} · {{done}} tasks{{#summary}} · {{summary}}{{/summary}}</p>
        <table id="run-sources"><thead><tr><th>source</th><th>state</th><th>backup task</th><th>artifacts</th><th>copies</th><th>reason</th></tr></thead><tbody>
        {{#sources}}<tr><td><a href="/sources/{{url}}">{{name}}</a></td><td class="cell {{stateClass}}">{{state}}</td><td>{{backup}}</td><td>{{artifacts}}</td><td>{{copies}}</td><td>{{reason}}</td></tr>
        {{/sources}}
        </tbody></table>
        {{> foot}}
        """,
        "alerts": """
        {{> head}}
        {{#none}}<p>No alert has fired.</p>{{/none}}
        <table id="alerts"><thead><tr><th>rule</th><th>subject</th><th>phase</th><th>summary</th><th>since</th><th>resolved</th><th>quiet</th></tr></thead><tbody>
        {{#alerts}}<tr><td>{{rule}}</td><td>{{subject}}</td><td class="cell {{phaseClass}}">{{phase}}</td><td>{{summary}}{{#delivery}}<div class="problem">not delivered: {{delivery}}</div>{{/delivery}}</td><td>{{since}}</td><td>{{resolved}}</td><td>{{quiet}}</td></tr>
        {{/alerts}}
        </tbody></table>
        {{> foot}}
        """,
        "error": """
        {{> head}}
        <p class="problem">{{message}}</p>
        {{> foot}}
        """,
    ]

    /// `/style.css`: the only style the pages load (the policy allows no inline style).
    public static let styleSheet = """
        body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1b1f24;background:#fafbfc}
        header{background:#24292f;color:#fff;padding:8px 16px}header a{color:#cde;margin-right:12px}
        h1{margin:4px 0;font-size:20px}.meta{margin:0;color:#aab;font-size:12px}
        main{padding:12px 16px}table{border-collapse:collapse;margin:8px 0}
        th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:left;vertical-align:top}
        thead th{background:#eef1f4}.cell{border-radius:3px;padding:2px 6px}
        td.cell{border-radius:0}.fresh{background:#d8f5dd}.pending{background:#e8eef8}
        .late{background:#fff1c2}.missing{background:#ffd6d6}.mutant{background:#f2a0a0}
        .regression{background:#f5c9ff}.held{background:#e0d7ff}.overdue{background:#ffe2c2}
        .none{background:#f6f8fa}.problem{color:#a40e26;font-size:12px}.badge{background:#cf222e;color:#fff;border-radius:8px;padding:0 6px}
        .legend .cell{margin-right:4px}.copy{font-size:12px}.copy.mutant,.copy.quarantined,.copy.mismatch{color:#a40e26}
        svg.plot{width:100%;max-width:760px;height:auto;background:#fff;border:1px solid #d0d7de}
        .axes line{stroke:#e5e8eb}.axes text,.legend{font-size:11px;fill:#57606a}.ylabel{text-anchor:end}.end{text-anchor:end}
        .series polyline{fill:none;stroke-width:1.5}.series circle{stroke:none}.dashed polyline{stroke-dasharray:5 4}
        .s0 polyline{stroke:#0969da}.s0 circle,.s0 text{fill:#0969da}.s1 polyline{stroke:#bf3989}.s1 circle,.s1 text{fill:#bf3989}
        .s2 polyline{stroke:#1a7f37}.s2 circle,.s2 text{fill:#1a7f37}.s3 polyline{stroke:#9a6700}.s3 circle,.s3 text{fill:#9a6700}
        .s4 polyline{stroke:#8250df}.s4 circle,.s4 text{fill:#8250df}.s5 polyline{stroke:#57606a}.s5 circle,.s5 text{fill:#57606a}
        .empty{font-size:14px;fill:#8c959f;text-anchor:middle}
        """

    /// `/favicon.svg`, so that a browser's icon request is answered.
    public static let favicon =
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\"><rect width=\"16\" height=\"16\" rx=\"3\" fill=\"#1a7f37\"/><path d=\"M4 8l3 3 5-6\" stroke=\"#fff\" stroke-width=\"2\" fill=\"none\"/></svg>"
}
