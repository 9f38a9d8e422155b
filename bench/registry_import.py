"""Member registry import benchmark: seconds and peak memory of `payhara members import` for
20,000 members / 10,000 institutions and for 200,000 / 100,000 (the association's size; the
promise is under 60 s, with memory that does not grow with the files).

    make bench                                   # also runs this
    .venv/bin/python bench/registry_import.py --members 200000

The files are generated (deterministic, Japanese names; the members file in CP932 as Excel writes
it, the institutions file in UTF-8 with a BOM) in a temporary directory that is removed afterwards.
Each import runs the CLI in a process of its own, so its peak RSS (ru_maxrss) is its own. The
database of PAYHARA_DATABASE_URL (the bench's own) is recreated with the eligibility schema.
"""
import argparse
import asyncio
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.prefectures import PREFECTURES  # noqa: E402

RUN_TIMEOUT_S = 300.0  # an import that takes longer is a failure; the bench never hangs
FAMILY = [("佐藤", "サトウ"), ("鈴木", "スズキ"), ("高橋", "タカハシ"), ("髙橋", "タカハシ"), ("田中", "タナカ"),
          ("渡辺", "ワタナベ"), ("渡邉", "ワタナベ"), ("伊藤", "イトウ"), ("山本", "ヤマモト"), ("中村", "ナカムラ"),
          ("小林", "コバヤシ"), ("斎藤", "サイトウ"), ("齋藤", "サイトウ"), ("山﨑", "ヤマザキ"), ("吉田", "ヨシダ"),
          ("松本", "マツモト"), ("井上", "イノウエ"), ("木村", "キムラ"), ("林", "ハヤシ"), ("清水", "シミズ")]
GIVEN = [("太郎", "タロウ"), ("花子", "ハナコ"), ("一郎", "イチロウ"), ("美咲", "ミサキ"), ("健太", "ケンタ"),
         ("陽子", "ヨウコ"), ("翔", "ショウ"), ("さくら", "サクラ"), ("德子", "ノリコ"), ("隆", "タカシ")]
PLACES = ["中央", "駅前", "さくら", "みなと", "けやき", "ひまわり", "青葉", "緑町", "本町", "南"]
KINDS = [("内科クリニック", "medical"), ("整形外科", "medical"), ("歯科医院", "medical"), ("総合病院", "medical"),
         ("ケアホーム", "care"), ("デイサービスセンター", "care"), ("介護老人保健施設", "care")]
MEMBERS_HEADER = "member_no,name,name_kana,prefecture,status\n"
INSTITUTIONS_HEADER = "institution_id,name,kind,prefecture,founder_member_no,manager_member_no\n"


def write_files(directory: Path, members: int, institutions: int) -> tuple[Path, Path]:
    """The two files, the same for the same sizes."""
    rng = random.Random(members * 7 + institutions)
    members_path, institutions_path = directory / f"members-{members}.csv", directory / f"institutions-{institutions}.csv"
    with open(members_path, "w", encoding="cp932", newline="") as file:
        file.write(MEMBERS_HEADER.replace("\n", "\r\n"))
        for n in range(1, members + 1):
            (family, family_kana), (given, given_kana) = rng.choice(FAMILY), rng.choice(GIVEN)
            status = "withdrawn" if rng.random() < 0.03 else "active"
            file.write(f"M{n:07d},{family} {given},{family_kana} {given_kana},{rng.choice(PREFECTURES)},{status}\r\n")
    with open(institutions_path, "w", encoding="utf-8-sig", newline="") as file:
        file.write(INSTITUTIONS_HEADER)
        for n in range(1, institutions + 1):
            family, _ = rng.choice(FAMILY)
            suffix, kind = rng.choice(KINDS)
            legal = rng.choice(["", "", "医療法人社団 ", "医療法人 ", "社会福祉法人 "])
            founder = f"M{rng.randint(1, members):07d}"
            manager = f"M{rng.randint(1, members):07d}" if rng.random() < 0.5 else ""
            if rng.random() < 0.05:  # a founder who is not a member
                founder = f"M{members + n:07d}"
            if rng.random() < 0.02:  # neither given
                founder = manager = ""
            file.write(f"I{n:07d},{legal}{family}{rng.choice(PLACES)}{suffix},{kind},{rng.choice(PREFECTURES)},"
                       f"{founder},{manager}\n")
    return members_path, institutions_path


def child(members_path: str, institutions_path: str) -> None:
    """In its own process: the CLI's import, timed, and this process's peak RSS."""
    from services import cli

    before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    code = cli.main(["members", "import", "--members", members_path, "--institutions", institutions_path])
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"code": code, "seconds": seconds, "peak_mb": peak_mb, "before_mb": before_mb}), flush=True)


def run_import(members_path: Path, institutions_path: Path) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", str(members_path), str(institutions_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    *said, result = done.stdout.strip().splitlines() or [""]
    if done.returncode != 0 or not result.startswith("{") or json.loads(result)["code"] != 0:
        raise RuntimeError(f"import failed (exit {done.returncode}): {done.stdout[-2000:]}{done.stderr[-2000:]}")
    return {**json.loads(result), "said": said, "warned": done.stderr.strip()}


async def prepare(database_url: str) -> None:
    from shared import migrate
    from tests.support import recreate_database

    await recreate_database(database_url)
    await asyncio.to_thread(migrate.upgrade, ("eligibility",), database_url)


def main(members: int) -> None:
    from shared.settings import Settings

    settings = Settings()
    asyncio.run(prepare(settings.database_url))
    print(f"bench: registry import; database {settings.database_url.rsplit('/', 1)[-1]}")
    results = []
    with tempfile.TemporaryDirectory(prefix="payhara-bench-registry-") as workdir:
        for size in (members // 10, members):
            files = write_files(Path(workdir), size, size // 2)
            result = run_import(*files)
            results.append((size, result))
            print(f"  {size:>7} members, {size // 2:>7} institutions: {result['seconds']:5.1f} s, "
                  f"peak RSS {result['peak_mb']:5.0f} MB ({result['before_mb']:.0f} MB before the import)", flush=True)
            for line in result["said"] + [result["warned"]]:
                print(f"    {line}")
            for path in files:
                os.remove(path)
    print("registry import: " + ", ".join(f"{size // 1000}k/{size // 2000}k {r['seconds']:.1f} s {r['peak_mb']:.0f} MB"
                                          for size, r in results))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(*sys.argv[2:4])
    else:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--members", type=int, default=200_000, help="institutions: half as many")
        main(parser.parse_args().members)
