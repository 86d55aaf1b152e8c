"""The README's two commands are real: CI runs the test command exactly, and the site command's
script exists and explains itself."""
import re, subprocess, sys

from helpers import ROOT


def readme_command(label):
    "The shell command in the code block that follows the README's bold `label`."
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"\*\*{label}\*\*.*?```sh\n(.+?)\n```", text, re.S)
    assert match, f"README.md has no command under **{label}**"
    return match[1].strip()


def test_ci_runs_the_readme_test_command():
    command = readme_command("Run every test")
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    assert ci_lines[-1] == command, \
        f".ci/run ends with {ci_lines[-1]!r}, the README says {command!r}"


def test_site_command_exists_and_explains_itself():
    command = readme_command("Build the site")
    script = re.search(r"python (\S+\.py)", command)[1]
    assert (ROOT / script).exists(), script
    result = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0 and "--plain" in result.stdout, result.stderr
