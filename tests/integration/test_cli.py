"""The command line: flags, errors, help, the images list, the config file."""
import os
import subprocess
import tempfile
import unittest

from harness import BINARY, LANGUAGES, ROOT, Server, require_images, PYTHON_IMAGE


def run(*args):
    return subprocess.run([BINARY] + list(args), capture_output=True, text=True, cwd=ROOT,
                          timeout=30)


class CliTest(unittest.TestCase):
    def test_bad_flag(self):
        for args, word in ((["--bogus"], "--bogus"), (["--workers", "x"], "--workers"),
                           (["--port", "70000"], "--port"), (["--timeout"], "--timeout")):
            with self.subTest(args=args):
                r = run("start", *args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(word, r.stderr)

    def test_help_and_version(self):
        r = run("--help")
        self.assertEqual(r.returncode, 0)
        for flag in ("--backlog", "--memory", "--cpu", "--output", "--timeout", "--workers",
                     "--port", "--gvisor", "--host", "--runtime", "--languages",
                     "--docker-host", "--max-count", "--max-body", "--config"):
            self.assertIn(flag, r.stdout)
        r = run("version")
        self.assertEqual(r.returncode, 0)
        self.assertTrue(r.stdout.startswith("bg-compiler "))

    def test_images_lists_each_image_with_packages(self):
        r = run("images", "--languages", LANGUAGES)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = dict(l.split("\t") for l in r.stdout.strip().splitlines())
        self.assertEqual(lines["bg-compiler/python:3.11"], "python3-minimal")
        self.assertIn("gcc", lines["bg-compiler/c:gcc12"].split())

    def test_broken_languages_file_stops_start(self):
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
            f.write('language "x" {\n  image = "i",\n  file = "f",\n  run = {"r"},\n'
                    '  colour = "blue",\n}\n')
        r = run("start", "--languages", f.name, "--port", "0")
        os.unlink(f.name)
        self.assertEqual(r.returncode, 1)
        self.assertIn(f.name, r.stderr)
        self.assertIn("colour", r.stderr)
        self.assertIn("'x'", r.stderr)

    def test_config_file_and_command_line_precedence(self):
        require_images(PYTHON_IMAGE)
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
            f.write("max_count = 2\nworkers = 1\n")
        try:
            s = Server("--config", f.name, "--max-count", "3")
            try:
                status, _, body = s.compile_json({"lang": "python", "script": "print(1)",
                                                  "count": 4})
                self.assertEqual(status, 400)
                self.assertIn("1 to 3", body["error"])
            finally:
                self.assertEqual(s.stop(), 0)
        finally:
            os.unlink(f.name)

    def test_config_file_unknown_setting(self):
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
            f.write("wrokers = 3\n")
        r = run("start", "--config", f.name)
        os.unlink(f.name)
        self.assertEqual(r.returncode, 2)
        self.assertIn("wrokers", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
