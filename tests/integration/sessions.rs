//! The session routes of DESIGN §3, with their exact shapes, and file versioning.

use serde_json::{Value, json};

use crate::common::{Server, assert_shape};

#[tokio::test]
async fn the_six_session_routes_answer_their_documented_shapes() {
    let server = Server::start();

    let created = server.post("/api/v1/stage/sessions", json!(null)).await;
    assert_eq!(created.status, 201);
    assert_shape(&created.body, &json!({ "success": true, "data": { "id": "<id:ses_>" } }));
    assert!(created.headers["x-request-id"].to_str().unwrap().starts_with("req_"));
    let id = created.body["data"]["id"].as_str().unwrap().to_owned();

    let app_tsx = "export default function App() {\n  return <h1>Hello</h1>;\n}\n";
    let pushed = server
        .post(&format!("/api/v1/stage/sessions/{id}/push"), json!({ "files": { "/app/App.tsx": app_tsx } }))
        .await;
    assert_eq!(pushed.status, 200);
    assert_shape(&pushed.body, &json!({ "success": true, "data": { "count": 1 } }));

    let rendered = server.post(&format!("/api/v1/stage/sessions/{id}/render"), json!({})).await;
    assert_eq!(rendered.status, 200);
    assert_shape(
        &rendered.body,
        &json!({ "success": true, "data": { "entry": "/app/App.tsx", "version": 1, "error": null, "problems": [] } }),
    );

    let status = server.get(&format!("/api/v1/stage/sessions/{id}/status")).await;
    assert_eq!(status.status, 200);
    assert_shape(
        &status.body,
        &json!({ "success": true, "data": {
            "session": { "createdAt": "<time>", "lastAccessedAt": "<time>" },
            "render": { "entry": "/app/App.tsx", "version": 1, "error": null, "problems": [], "renderedAt": "<time>" },
            "files": [{ "path": "/app/App.tsx", "version": 1, "size": app_tsx.len() }],
        }}),
    );

    let file = server.get(&format!("/api/v1/stage/sessions/{id}/files/app/App.tsx")).await;
    assert_eq!(file.status, 200);
    assert_shape(
        &file.body,
        &json!({ "success": true, "data": {
            "path": "/app/App.tsx", "content": app_tsx, "version": 1, "size": app_tsx.len(), "createdAt": "<time>",
        }}),
    );

    let scopes = json!({ "scopes": ["https://www.googleapis.com/auth/spreadsheets"] });
    let set = server.put(&format!("/api/v1/stage/sessions/{id}/google-scopes"), scopes).await;
    assert_eq!(set.status, 200);
    assert_shape(
        &set.body,
        &json!({ "success": true, "data": {
            "scopes": ["https://www.googleapis.com/auth/spreadsheets"], "updatedAt": "<time>",
        }}),
    );
    let read = server.get(&format!("/api/v1/stage/sessions/{id}/google-scopes")).await;
    assert_eq!(read.body["data"], set.body["data"]);

    // What was stored: one file version whose blob is the pushed text.
    let db = server.db();
    let stored: Vec<u8> = db
        .query_row(
            "SELECT b.data FROM file_versions f JOIN blobs b ON b.hash = f.blob_hash WHERE f.session_id = ?1 AND f.path = '/app/App.tsx'",
            [&id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored, app_tsx.as_bytes());
}

#[tokio::test]
async fn a_render_bumps_its_version_and_records_a_missing_entry_as_a_problem() {
    let server = Server::start();
    let id = server.new_session().await;
    let main = "export default function Main() {\n  return <p>main</p>;\n}\n";
    server.post(&format!("/api/v1/stage/sessions/{id}/push"), json!({ "files": { "/src/Main.tsx": main } })).await;

    let missing = server.post(&format!("/api/v1/stage/sessions/{id}/render"), json!({})).await;
    assert_eq!(missing.status, 200);
    assert_eq!(
        missing.body["data"],
        json!({
            "entry": "/app/App.tsx",
            "version": 1,
            "error": "1 problem:\n\n/app/App.tsx: the entry /app/App.tsx is not a file of the session",
            "problems": [{ "file": "/app/App.tsx", "line": null, "column": null,
                           "message": "the entry /app/App.tsx is not a file of the session" }],
        })
    );

    let first = server.post(&format!("/api/v1/stage/sessions/{id}/render"), json!({ "entry": "src/Main.tsx" })).await;
    assert_eq!(first.body["data"], json!({ "entry": "/src/Main.tsx", "version": 2, "error": null, "problems": [] }));
    let status = server.get(&format!("/api/v1/stage/sessions/{id}/status")).await;
    assert_eq!(
        (&status.body["data"]["render"]["version"], &status.body["data"]["render"]["error"]),
        (&json!(2), &Value::Null)
    );
}

#[tokio::test]
async fn a_render_reports_a_syntax_error_with_file_line_and_column() {
    let server = Server::start();
    let id = server.new_session().await;
    let files = json!({
        "/app/App.tsx": "import Chart from './Chart';\nexport default function App() {\n  return <Chart />;\n}\n",
        "/app/Chart.tsx": "export default function Chart() {\n  const points = [1, 2,, 3;\n  return <p>{points.length}</p>;\n}\n",
    });
    server.post(&format!("/api/v1/stage/sessions/{id}/push"), json!({ "files": files })).await;
    let rendered = server.post(&format!("/api/v1/stage/sessions/{id}/render"), json!({})).await;
    assert_eq!(rendered.status, 200);
    let problems = &rendered.body["data"]["problems"];
    assert_eq!(problems.as_array().unwrap().len(), 1, "{problems}");
    assert_eq!(
        (&problems[0]["file"], &problems[0]["line"], &problems[0]["column"]),
        (&json!("/app/Chart.tsx"), &json!(2), &json!(27))
    );
    let error = rendered.body["data"]["error"].as_str().unwrap();
    assert!(error.starts_with("1 problem:\n\n/app/Chart.tsx:2:27: "), "{error}");
    assert!(error.contains("> 2 |   const points = [1, 2,, 3;\n    |                           ^"), "{error}");
}

#[tokio::test]
async fn a_multi_file_app_with_the_kit_and_recharts_renders_clean() {
    let server = Server::start();
    let id = server.new_session().await;
    let files = json!({
        "/app/App.tsx": "import Button from './Button';\nimport { Card, CardContent } from '@/components/ui/card';\nimport { LineChart, Line } from 'recharts';\nimport { format } from '@/lib/format';\n\nconst data = [{ x: 1, y: 2 }, { x: 2, y: 3 }];\n\nexport default function App() {\n  return (\n    <Card>\n      <CardContent>\n        <LineChart width={300} height={100} data={data}><Line dataKey=\"y\" /></LineChart>\n        <Button label={format(data.length)} />\n      </CardContent>\n    </Card>\n  );\n}\n",
        "/app/Button.tsx": "export default function Button({ label }: { label: string }) {\n  return <button>{label}</button>;\n}\n",
        "/app/lib/format/index.ts": "export const format = (n: number): string => `${n} points`;\n",
    });
    server.post(&format!("/api/v1/stage/sessions/{id}/push"), json!({ "files": files })).await;
    let rendered = server.post(&format!("/api/v1/stage/sessions/{id}/render"), json!({})).await;
    assert_eq!(rendered.body["data"], json!({ "entry": "/app/App.tsx", "version": 1, "error": null, "problems": [] }));
}

#[tokio::test]
async fn a_forbidden_import_and_eval_are_reported() {
    let server = Server::start();
    let id = server.new_session().await;
    let app = "import axios from 'axios';\nexport default function App() {\n  const x = eval('1 + 1');\n  return <p>{x}{String(axios)}</p>;\n}\n";
    server.post(&format!("/api/v1/stage/sessions/{id}/push"), json!({ "files": { "/app/App.tsx": app } })).await;
    let rendered = server.post(&format!("/api/v1/stage/sessions/{id}/render"), json!({})).await;
    let problems: Vec<(Value, Value, Value, String)> = rendered.body["data"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["file"].clone(),
                p["line"].clone(),
                p["column"].clone(),
                p["message"].as_str().unwrap().split(';').next().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        problems,
        [
            (json!("/app/App.tsx"), json!(3), json!(13), "`eval` is not allowed: the app may not use it".to_owned()),
            (json!("/app/App.tsx"), json!(1), json!(19), "import of \"axios\" is not allowed".to_owned()),
        ]
    );
    let status = server.get(&format!("/api/v1/stage/sessions/{id}/status")).await;
    assert_eq!(status.body["data"]["render"]["problems"], rendered.body["data"]["problems"]);
    assert!(status.body["data"]["render"]["error"].as_str().unwrap().starts_with("2 problems:"));
}

#[tokio::test]
async fn versions_history_tombstones_and_dedupe() {
    let server = Server::start();
    let id = server.new_session().await;
    let push = |files: serde_json::Value| {
        let server = &server;
        let id = id.clone();
        async move { server.post(&format!("/api/v1/stage/sessions/{id}/push"), json!({ "files": files })).await }
    };

    assert_eq!(push(json!({ "/a.txt": "one", "/b.txt": "same" })).await.status, 200);
    assert_eq!(push(json!({ "/a.txt": "two", "/c.txt": "same" })).await.status, 200);
    // Writing the bytes a path already holds makes no new version.
    assert_eq!(push(json!({ "/a.txt": "two" })).await.status, 200);

    let a = server.get(&format!("/api/v1/stage/sessions/{id}/files/a.txt")).await;
    assert_eq!((a.body["data"]["content"].as_str(), a.body["data"]["version"].as_i64()), (Some("two"), Some(2)));
    let old = server.get(&format!("/api/v1/stage/sessions/{id}/files/a.txt?version=1")).await;
    assert_eq!((old.body["data"]["content"].as_str(), old.body["data"]["version"].as_i64()), (Some("one"), Some(1)));
    let absent = server.get(&format!("/api/v1/stage/sessions/{id}/files/a.txt?version=9")).await;
    assert_eq!(absent.status, 404);

    let deleted = server.delete(&format!("/api/v1/stage/sessions/{id}/files/a.txt")).await;
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.body["data"], json!({ "path": "/a.txt", "version": 3, "deleted": true }));
    assert_eq!(server.get(&format!("/api/v1/stage/sessions/{id}/files/a.txt")).await.status, 404);
    assert_eq!(server.delete(&format!("/api/v1/stage/sessions/{id}/files/a.txt")).await.status, 404);

    let history = server.get(&format!("/api/v1/stage/sessions/{id}/history/a.txt")).await;
    assert_shape(
        &history.body["data"],
        &json!([
            { "version": 1, "size": 3, "deleted": false, "hash": "<string>", "createdAt": "<time>" },
            { "version": 2, "size": 3, "deleted": false, "hash": "<string>", "createdAt": "<time>" },
            { "version": 3, "size": 0, "deleted": true, "hash": null, "createdAt": "<time>" },
        ]),
    );

    // Writing after a tombstone continues the numbering; versions are never reused.
    push(json!({ "/a.txt": "one" })).await;
    let again = server.get(&format!("/api/v1/stage/sessions/{id}/files/a.txt")).await;
    assert_eq!(again.body["data"]["version"], 4);

    let files = server.get(&format!("/api/v1/stage/sessions/{id}/files")).await;
    let paths: Vec<&str> = files.body["data"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["/a.txt", "/b.txt", "/c.txt"]);

    // Identical content is stored once: "one", "two", "same".
    let blobs: i64 = server.db().query_row("SELECT COUNT(*) FROM blobs", [], |r| r.get(0)).unwrap();
    assert_eq!(blobs, 3);
}

#[tokio::test]
async fn binary_files_round_trip_as_base64() {
    let server = Server::start();
    let id = server.new_session().await;
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    let pushed = server
        .post(
            &format!("/api/v1/stage/sessions/{id}/push"),
            json!({ "files": { "/public/dot.png": png, "/notes.txt": { "content": "aGk=", "encoding": "base64" } }, "encoding": "base64" }),
        )
        .await;
    assert_eq!(pushed.body["data"]["count"], 2);
    let dot = server.get(&format!("/api/v1/stage/sessions/{id}/files/public/dot.png")).await;
    assert_eq!(dot.body["data"]["content"], png);
    assert_eq!(dot.body["data"]["encoding"], "base64");
    assert_eq!(dot.body["data"]["size"], 70);
    // Base64 that decodes to UTF-8 text reads back as text.
    let notes = server.get(&format!("/api/v1/stage/sessions/{id}/files/notes.txt")).await;
    assert_eq!(notes.body["data"]["content"], "hi");
    assert!(notes.body["data"].get("encoding").is_none());
}

#[tokio::test]
async fn snapshots_restore_by_writing_new_versions() {
    let server = Server::start();
    let id = server.new_session().await;
    server.post(&format!("/api/v1/stage/sessions/{id}/push"), json!({ "files": { "/a": "1", "/b": "1" } })).await;

    let snap = server.post(&format!("/api/v1/stage/sessions/{id}/snapshots"), json!({ "name": "before" })).await;
    assert_eq!(snap.status, 201);
    assert_shape(
        &snap.body["data"],
        &json!({ "id": "<id:snap_>", "sessionId": id, "name": "before", "fileCount": 2, "createdAt": "<time>" }),
    );
    let snap_id = snap.body["data"]["id"].as_str().unwrap().to_owned();
    let unnamed = server.post(&format!("/api/v1/stage/sessions/{id}/snapshots"), json!(null)).await;
    assert_eq!(unnamed.body["data"]["name"], json!(null));

    server.post(&format!("/api/v1/stage/sessions/{id}/push"), json!({ "files": { "/a": "2", "/c": "new" } })).await;
    server.delete(&format!("/api/v1/stage/sessions/{id}/files/b")).await;

    let list = server.get(&format!("/api/v1/stage/sessions/{id}/snapshots")).await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 2);
    assert_eq!(list.body["data"][1]["id"], snap_id);

    let restored = server.post(&format!("/api/v1/stage/sessions/{id}/snapshots/{snap_id}/restore"), json!(null)).await;
    assert_eq!(restored.status, 200);
    assert_eq!(restored.body["data"], json!({ "snapshotId": snap_id, "restored": 2, "deleted": 1 }));

    let status = server.get(&format!("/api/v1/stage/sessions/{id}/status")).await;
    assert_eq!(
        status.body["data"]["files"],
        json!([{ "path": "/a", "version": 3, "size": 1 }, { "path": "/b", "version": 3, "size": 1 }])
    );
    let a = server.get(&format!("/api/v1/stage/sessions/{id}/files/a")).await;
    assert_eq!(a.body["data"]["content"], "1");
    // History is kept: /c was tombstoned, not erased.
    let c = server.get(&format!("/api/v1/stage/sessions/{id}/history/c")).await;
    assert_eq!(c.body["data"].as_array().unwrap().len(), 2);

    let unknown = server.post(&format!("/api/v1/stage/sessions/{id}/snapshots/snap_nope/restore"), json!(null)).await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn sessions_are_listed_and_deleted() {
    let server = Server::start();
    let id = server.new_session().await;
    server
        .post(&format!("/api/v1/stage/sessions/{id}/push"), json!({ "files": { "/only/here.txt": "unique bytes" } }))
        .await;
    let other = server.new_session().await;

    let list = server.get("/api/v1/stage/sessions").await;
    assert_shape(
        &list.body["data"],
        &json!([
            { "id": "<id:ses_>", "createdAt": "<time>", "lastAccessedAt": "<time>", "fileCount": "<number>", "appSid": null },
            { "id": "<id:ses_>", "createdAt": "<time>", "lastAccessedAt": "<time>", "fileCount": "<number>", "appSid": null },
        ]),
    );
    let counts: Vec<(String, i64)> = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap().to_owned(), s["fileCount"].as_i64().unwrap()))
        .collect();
    assert!(counts.contains(&(id.clone(), 1)) && counts.contains(&(other.clone(), 0)), "{counts:?}");

    let deleted = server.delete(&format!("/api/v1/stage/sessions/{id}")).await;
    assert_eq!(deleted.body, json!({ "success": true, "data": { "id": id, "deleted": true } }));
    assert_eq!(server.get(&format!("/api/v1/stage/sessions/{id}/status")).await.status, 404);
    let db = server.db();
    let rows: i64 =
        db.query_row("SELECT COUNT(*) FROM file_versions WHERE session_id = ?1", [&id], |r| r.get(0)).unwrap();
    let blobs: i64 = db.query_row("SELECT COUNT(*) FROM blobs", [], |r| r.get(0)).unwrap();
    assert_eq!((rows, blobs), (0, 0));
}
