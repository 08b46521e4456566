"""Format handlers: byte-exact round trips, edits only inside prose, per-line/row errors."""

from __future__ import annotations

import codecs
import json
from types import SimpleNamespace

import pytest

from rewrite.convert import ConvertOptions, Job, convert_jobs
from rewrite.errors import InputError
from rewrite.convert.formats import FormatOptions, Segment, decode, parse

from .convert_fakes import FakeRestorer


def convert_one(name: str, data: bytes, **options):
    fmt = FormatOptions(options.pop("field", "text"), options.pop("column", "text"))
    return convert_jobs([Job(name, data, "sha")], FakeRestorer(), ConvertOptions(fmt, **options))[0]


# Documents with prose but nothing the fake restores: they must come back byte for byte.
CLEAN = {
    "plain.txt": "First line of prose.\nSecond line 😀 here.\n\nNew paragraph, no newline at end".encode(),
    "crlf.txt": b"Windows line one.\r\nLine two.\r\n\r\nThird paragraph.\r\n",
    "cr.txt": b"Old Mac line.\rAnother line.\r",
    "bom.txt": codecs.BOM_UTF8 + "Text with a BOM and caf\u00e9.\r\n".encode(),
    "utf16.txt": codecs.BOM_UTF16_BE + "Big-endian UTF-16 text, caf\u00e9.\n".encode("utf-16-be"),
    "empty.txt": b"",
    "doc.md": (
        b"---\r\ntitle: x\r\n---\r\n# Heading *em* ##\r\n\r\n> quote `code` [link](http://a.b/c \"t\")\r\n"
        b"> more\r\n\r\n- item\r\n  continued &amp; \\* <http://x.y>\r\n\r\n```py\r\nx = 1\r\n```\r\n\r\n"
        b"| a | b |\r\n|---|---|\r\n| c | d |\r\n\r\n<div>\r\nblock\r\n</div>\r\n\tindented code\r\n"
    ),
    "latin1.html": (
        '<!DOCTYPE html>\n<html><head><meta http-equiv="Content-Type" content="text/html; charset=ISO-8859-1">'
        '<title>Caf\u00e9</title><style>p { color: red }</style></head>\n<body><p class=x>Na\u00efve &amp; '
        "<b>bold</b> text&nbsp;here &#169;</p><script>if (a < b) {}</script><!-- c --><p>unclosed\n</body></html>\n"
    ).encode("latin-1"),
    "page.html": codecs.BOM_UTF8 + b"<p>Hello <a href='x'>there</a>.</p>\r\n<br/><img src=a alt=\"b\">\r\n",
    "rows.jsonl": b'{"id": 1, "text": "Plain prose.", "x": [1, 2]}\r\n{"text":"caf\\u00e9 \\"q\\"","id":2}\r\n\r\n{"id": 3}\r\n',
    "table.csv": b'id,text,note\r\n1,"Quoted, with comma",x\r\n2,plain text,"y ""z"""\r\n',
    "semi.csv": "id;text\n1;Semicolon dialect caf\u00e9\n2;\"two\nlines\"\n".encode(),
    "tabs.tsv": b"text\tn\nTab separated\t1\n",
}


@pytest.mark.parametrize("name", sorted(CLEAN))
def test_document_with_nothing_to_restore_comes_back_byte_for_byte(name):
    result = convert_one(name, CLEAN[name])
    assert result.status == "ok", result.errors
    assert result.edits == []
    assert result.output == CLEAN[name]


@pytest.mark.parametrize("name", sorted(CLEAN))
def test_render_of_parsed_document_is_identity(name):
    document = parse(CLEAN[name], "." + name.rsplit(".", 1)[1], FormatOptions())
    assert document.render([[] for _ in document.segments]) == CLEAN[name]


def test_txt_restores_and_keeps_crlf_bom_and_urls():
    data = codecs.BOM_UTF8 + b"He mentioned 15 individuals.\r\nSee https://x.org/mentioned today.\r\n\r\nShe mentioned it.\r\n"
    result = convert_one("a.txt", data)
    assert result.output == codecs.BOM_UTF8 + (
        b"He said 15 people.\r\nSee https://x.org/mentioned today.\r\n\r\nShe said it.\r\n"
    )
    assert [(e["line"], e["original"], e["replacement"]) for e in result.edits] == [
        (1, "mentioned", "said"), (1, "individuals", "people"), (4, "mentioned", "said"),
    ]
    assert result.words == 13 and result.spin_ratio == round(3 / 13, 4)


def test_txt_edit_offsets_are_code_points_with_emoji():
    text = "😀😀 mentioned 東京.\n"
    result = convert_one("e.txt", text.encode())
    (edit,) = result.edits
    assert text[edit["offset"] : edit["offset"] + edit["length"]] == "mentioned"
    assert result.output.decode() == "😀😀 said 東京.\n"


def test_txt_in_utf16_is_written_back_in_utf16():
    data = codecs.BOM_UTF16_LE + "They mentioned it.\r\n".encode("utf-16-le")
    assert convert_one("a.txt", data).output == codecs.BOM_UTF16_LE + "They said it.\r\n".encode("utf-16-le")


MD = (
    "---\ntitle: individuals mentioned\n---\n"
    "# Individuals mentioned\n\n"
    "He mentioned `mentioned` and [mentioned](http://x.org/mentioned \"mentioned\") at https://mentioned.org/a.\n"
    "Also ![mentioned](mentioned.png), <http://mentioned.com> and <span title=\"mentioned\">mentioned</span>.\n\n"
    "> Individuals mentioned\n> not less than that.\n\n"
    "```\nmentioned\n```\n\n    mentioned in indented code\n\n"
    "<div>\nmentioned in a block\n</div>\n\n"
    "[ref]: http://mentioned.org \"mentioned\"\n\n"
    "| col | mentioned |\n|---|---|\n| mentioned | x |\n"
)
MD_EXPECTED = (
    "---\ntitle: individuals mentioned\n---\n"
    "# Individuals said\n\n"
    "He said `mentioned` and [said](http://x.org/mentioned \"mentioned\") at https://mentioned.org/a.\n"
    "Also ![mentioned](mentioned.png), <http://mentioned.com> and <span title=\"mentioned\">said</span>.\n\n"
    "> Individuals said\n> at least that.\n\n"
    "```\nmentioned\n```\n\n    mentioned in indented code\n\n"
    "<div>\nmentioned in a block\n</div>\n\n"
    "[ref]: http://mentioned.org \"mentioned\"\n\n"
    "| col | said |\n|---|---|\n| said | x |\n"
)


def test_markdown_restores_prose_only():
    result = convert_one("a.md", MD.encode())
    assert result.output.decode() == MD_EXPECTED
    assert result.status == "ok"


def test_markdown_with_crlf_keeps_line_endings_and_skips_edits_across_quote_markers():
    data = "> He mentioned it, not less\r\n> than ten.\r\nPlain mentioned.\r\n".encode()
    result = convert_one("q.md", data)
    # "not less\r\n> than" crosses a "> " marker: the edit is dropped, the marker survives.
    assert result.output == b"> He said it, not less\r\n> than ten.\r\nPlain said.\r\n"


def test_markdown_escapes_and_entities_keep_their_markup():
    data = b"Fish &amp; chips \\*mentioned\\* and &copy; mentioned.\n"
    assert convert_one("e.md", data).output == b"Fish &amp; chips \\*said\\* and &copy; said.\n"


HTML = (
    '<html><head><meta charset="utf-8"><title>Individuals mentioned</title>'
    '<style>p::after { content: "mentioned" }</style></head>\n'
    '<body><p class="mentioned" data-x=\'mentioned\'>They <b>mentioned</b> it &amp; individuals mentioned.</p>\n'
    '<script>var s = "mentioned";</script><!-- mentioned --><code>mentioned</code>'
    '<pre>mentioned</pre><a href="/mentioned">mentioned</a></body></html>\n'
)


def test_html_restores_text_nodes_only():
    result = convert_one("a.html", HTML.encode())
    assert result.output.decode() == (
        '<html><head><meta charset="utf-8"><title>Individuals said</title>'
        '<style>p::after { content: "mentioned" }</style></head>\n'
        '<body><p class="mentioned" data-x=\'mentioned\'>They <b>said</b> it &amp; people said.</p>\n'
        '<script>var s = "mentioned";</script><!-- mentioned --><code>mentioned</code>'
        '<pre>mentioned</pre><a href="/mentioned">said</a></body></html>\n'
    )


def test_html_in_declared_latin1_stays_latin1_and_escapes_what_latin1_cannot_hold():
    data = '<meta charset="iso-8859-1"><p>Caf\u00e9 individuals mentioned.</p>\r\n'.encode("latin-1")
    result = convert_one("l.html", data)
    assert result.output == '<meta charset="iso-8859-1"><p>Caf\u00e9 people said.</p>\r\n'.encode("latin-1")
    document = parse(data, ".html", FormatOptions())
    segment = document.segments[0]
    from rewrite import Edit

    at = segment.text.index("individuals")
    out = document.render([[Edit(at, 11, "individuals", "pe\u2014ople", 1.0)]])
    assert out == '<meta charset="iso-8859-1"><p>Caf\u00e9 pe&#8212;ople mentioned.</p>\r\n'.encode("latin-1")


def test_jsonl_restores_the_field_and_keeps_other_fields_and_key_order():
    data = (
        b'{"id": 7, "text": "They mentioned it.", "note": "mentioned", "nested": {"text": "mentioned"}}\r\n'
        b'{"text":"caf\\u00e9 mentioned","z":1,"a":2}\n'
        b'{"text": "\xe6\x9d\xb1\xe4\xba\xac mentioned"}\n'
        b'{"id": 8, "text": null}\n'
    )
    result = convert_one("a.jsonl", data)
    assert result.output == (
        b'{"id": 7, "text": "They said it.", "note": "mentioned", "nested": {"text": "mentioned"}}\r\n'
        b'{"text":"caf\\u00e9 said","z":1,"a":2}\n'
        b'{"text": "\xe6\x9d\xb1\xe4\xba\xac said"}\n'
        b'{"id": 8, "text": null}\n'
    )
    assert [json.loads(line) for line in result.output.splitlines()][1] == {"text": "caf\u00e9 said", "z": 1, "a": 2}
    assert [(e["line"], e["field"], e["offset"]) for e in result.edits] == [(1, "text", 5), (2, "text", 5), (3, "text", 3)]


def test_jsonl_other_field_name():
    data = b'{"body": "He mentioned it.", "text": "mentioned"}\n'
    assert convert_one("a.jsonl", data, field="body").output == b'{"body": "He said it.", "text": "mentioned"}\n'


def test_jsonl_malformed_lines_are_recorded_and_kept_as_they_are():
    data = b'{"text": "mentioned"}\n{"text": oops}\n[1, 2]\n{"text": "individuals"}\n'
    result = convert_one("a.jsonl", data)
    assert result.status == "partial"
    assert [e["line"] for e in result.errors] == [2, 3]
    assert "malformed JSON" in result.errors[0]["reason"] and "not a JSON object" in result.errors[1]["reason"]
    assert result.output == b'{"text": "said"}\n{"text": oops}\n[1, 2]\n{"text": "people"}\n'


def test_jsonl_without_the_field_fails_with_a_hint():
    result = convert_one("a.jsonl", b'{"body": "mentioned"}\n')
    assert result.status == "failed" and result.output is None
    assert "--field" in result.errors[0]["reason"]


def test_csv_restores_the_column_and_keeps_the_dialect():
    data = b'id;text;note\r\n1;They mentioned it;mentioned\r\n2;"quoted; mentioned ""x""";y\r\n3;"line\r\nmentioned";z\r\n'
    result = convert_one("a.csv", data)
    assert result.output == b'id;text;note\r\n1;They said it;mentioned\r\n2;"quoted; said ""x""";y\r\n3;"line\r\nsaid";z\r\n'
    assert [(e["row"], e["column"]) for e in result.edits] == [(2, "text"), (3, "text"), (4, "text")]


def test_csv_quotes_a_cell_that_starts_needing_quotes():
    document = parse(b"text,n\nplain,1\n", ".csv", FormatOptions())
    from rewrite import Edit

    assert document.render([[Edit(0, 5, "plain", 'a, "b"', 1.0)]]) == b'text,n\n"a, ""b""",1\n'


def test_csv_malformed_rows_are_recorded_and_kept_as_they_are():
    data = b'id,text\n1,mentioned\n2,"bad"quote,x\n3,a,b\n4,individuals\n5,"never closed mentioned\n'
    result = convert_one("a.csv", data)
    assert result.status == "partial"
    assert [e["row"] for e in result.errors] == [3, 4, 6]
    assert all(e["reason"].startswith("malformed CSV row") for e in result.errors)
    assert result.output == b'id,text\n1,said\n2,"bad"quote,x\n3,a,b\n4,people\n5,"never closed mentioned\n'


def test_csv_without_the_column_fails_with_a_hint():
    result = convert_one("a.csv", b"id,body\n1,mentioned\n")
    assert result.status == "failed" and "--column" in result.errors[0]["reason"]


@pytest.mark.parametrize(
    "name, data, reason",
    [
        ("bin.txt", b"GIF89a\x00\x01\x02", "binary"),
        ("bad.txt", b"caf\xe9 mentioned\n", "not valid utf-8"),
        ("bad.md", b"# caf\xe9\n", "not valid utf-8"),
        ("bad.html", b"<meta charset=\"klingon-8\"><p>x</p>", "unknown charset"),
        ("bad2.html", b"<meta charset=\"windows-1252\"><p>\x81</p>", "not valid cp1252"),
        ("bad.csv", b"text\n\xff\xfe\xfa\n", "not valid utf-8"),
        ("a.pdf", b"%PDF-1.4", "unsupported file type"),
    ],
)
def test_files_that_cannot_be_converted_fail_with_a_reason(name, data, reason):
    result = convert_one(name, data)
    assert result.status == "failed" and result.output is None
    assert reason in result.errors[0]["reason"].lower()


def test_decode_prefers_bom_over_declared_charset():
    data = codecs.BOM_UTF8 + '<meta charset="iso-8859-1"><p>caf\u00e9</p>'.encode()
    decoded = decode(data, "html")
    assert decoded.codec == "utf-8" and "caf\u00e9" in decoded.text
    with pytest.raises(InputError, match="NUL"):
        decode(b"a\x00b", "txt")


def test_segment_edits_must_stay_inside_one_run():
    seg = Segment("ab cd", {})
    seg.add_run(0, 2, 10)
    seg.add_run(3, 5, 20)  # not contiguous in the source
    assert seg.editable(0, 2) and seg.editable(2, 2) and seg.editable(3, 5)
    assert not seg.editable(0, 5) and not seg.editable(1, 4)
    assert seg.source_span(3, 4) == (20, 21)
    seg.protect(0, 1)
    assert not seg.editable(0, 2) and seg.editable(1, 2)


def test_min_confidence_is_passed_to_the_restorer():
    result = convert_one("a.txt", b"individuals mentioned struggle\n", min_confidence=0.75)
    assert result.output == b"people said struggle\n"


def test_restorer_edits_that_do_not_match_their_sentence_are_dropped():
    class Liar(FakeRestorer):
        def restore_many(self, texts, **kwargs):
            return [
                SimpleNamespace(edits=[SimpleNamespace(**{**vars(e), "offset": e.offset + 1}) for e in r.edits])
                for r in super().restore_many(texts, **kwargs)
            ]

    result = convert_jobs([Job("a.txt", b"He mentioned it.\n", "s")], Liar(), ConvertOptions())[0]
    assert result.output == b"He mentioned it.\n" and result.edits == []


def test_a_hard_wrapped_sentence_reaches_the_restorer_whole():
    restorer = FakeRestorer()
    data = b"It cost not less\r\nthan ten.\r\n"
    result = convert_jobs([Job("w.txt", data, "s")], restorer, ConvertOptions())[0]
    assert result.output == b"It cost at least ten.\r\n"
    assert result.edits[0]["original"] == "not less\r\nthan"


def test_unpaired_surrogates_from_json_escapes_do_not_stop_the_file():
    data = b'{"text": "\\ud800 mentioned"}\n'
    result = convert_one("s.jsonl", data)
    assert result.status == "ok" and result.output == b'{"text": "\\ud800 said"}\n'


def test_the_converter_counts_words_as_the_restorer_does():
    from rewrite.text import count_words

    text = "Individuals mentioned 3.5 million don't-care items, e.g. U.S. ones.\n"
    result = convert_jobs([Job("a.txt", text.encode(), "x")], FakeRestorer(), ConvertOptions())[0]
    assert result.words == count_words(text) == 12  # "3.5" is one word, "e.g." two


def test_each_paragraph_reaches_the_restorer_whole_and_edits_splice_with_apply_edits():
    from rewrite import Edit

    restorer = FakeRestorer()
    data = b"They mentioned it. Then individuals came. Not not less than ten left.\n\nA second paragraph mentioned.\n"
    result = convert_jobs([Job("p.txt", data, "s")], restorer, ConvertOptions())[0]
    assert restorer.calls == [2]  # two paragraphs, one call; the restorer cuts sentences itself
    assert result.output == b"They said it. Then people came. Not at least ten left.\n\nA second paragraph said.\n"
    document = parse(b"plain text\n", ".txt", FormatOptions())
    with pytest.raises(InputError, match="does not match the text"):
        document.render([[Edit(0, 5, "other", "x", 1.0)]])  # one splicer, and it checks what it replaces
