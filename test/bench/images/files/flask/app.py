"""Benchmark flask app: an application factory, a blueprint, a jinja2
template, a JSON API backed by sqlite3. Served by gunicorn (see the recipe)."""
import datetime
import os
import sqlite3

from flask import Blueprint, Flask, g, jsonify, render_template, request

bp = Blueprint("items", __name__)
DB = os.environ.get("ITEMS_DB", "/tmp/items.sqlite3")


def db():
    if "db" not in g:
        g.db = sqlite3.connect(DB)
        g.db.row_factory = sqlite3.Row
    return g.db


@bp.route("/")
def index():
    rows = db().execute("select id, name from items order by id limit 20").fetchall()
    return render_template("index.html", items=rows, now=datetime.datetime.utcnow())


@bp.route("/api/items", methods=["GET", "POST"])
def items():
    if request.method == "POST":
        name = (request.get_json(silent=True) or {}).get("name", "unnamed")
        cur = db().execute("insert into items (name) values (?)", (name,))
        db().commit()
        return jsonify(id=cur.lastrowid, name=name), 201
    return jsonify([dict(r) for r in db().execute("select id, name from items order by id")])


@bp.route("/healthz")
def healthz():
    return "ok\n"


def create_app():
    app = Flask(__name__)
    app.register_blueprint(bp)

    @app.teardown_appcontext
    def close_db(_exc):
        conn = g.pop("db", None)
        if conn is not None:
            conn.close()

    with sqlite3.connect(DB) as conn:
        conn.execute("create table if not exists items (id integer primary key, name text not null)")
        if conn.execute("select count(*) from items").fetchone()[0] == 0:
            conn.executemany("insert into items (name) values (?)", [(f"item {i}",) for i in range(50)])
    # render once so that jinja2 compiles the template before the first request
    with app.test_request_context("/"):
        render_template("index.html", items=[], now=datetime.datetime.utcnow())
    return app


app = create_app()
