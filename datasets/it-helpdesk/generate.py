"""Generate the IT-helpdesk sample datasets from the hand-written facts and templates beside this file.

    python datasets/it-helpdesk/generate.py        # rewrites the three JSONL files; deterministic

- support-chat.jsonl: chat fine-tuning examples (system + user + assistant, some two-turn, some with an
  untrained `weight: 0` first answer); each carries `intent`, the group key for `ftops data prepare --group-by`.
- tickets-classification.jsonl: ticket texts labelled access, hardware, network, software or security.
- preferences.jsonl: DPO pairs (the helpdesk answer preferred over a vague or unsafe one).
"""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path
from types import SimpleNamespace

import yaml

HERE = Path(__file__).resolve().parent
SEED = 20261125

OPENERS = ["Hi, ", "Hello Harbor, ", "Quick question: ", "Morning! ", "Hey, ", "Sorry to bother you, "]
CLOSERS = [" Thanks!", " Thank you.", " Any idea?", " Cheers.", " It's a bit urgent.", ""]


def _ns(value):
    return SimpleNamespace(**value) if isinstance(value, dict) else value


def _expand(intent: dict, facts: dict) -> list[dict]:
    """One intent per combination of the facts its `for` names (office, system, app, error)."""
    axes = [axis.strip() for axis in intent.get("for", "").split(",") if axis.strip()]
    lists = {"office": facts["offices"], "system": facts["systems"], "app": facts["apps"], "error": facts["vpn_errors"]}
    base = {key: value for key, value in facts.items() if isinstance(value, str)}
    base["system_devices"] = " or ".join(system["device"] for system in facts["systems"])
    result = []
    for combo in itertools.product(*(lists[axis] for axis in axes)):
        context = dict(base, **{axis: _ns(item) for axis, item in zip(axes, combo)})
        result.append({"id": intent["id"].format_map(context),
                       "questions": [q.format_map(context) for q in intent["questions"]],
                       "answer": intent["answer"].format_map(context),
                       "followup": {key: text.format_map(context) for key, text in intent["followup"].items()}
                       if "followup" in intent else None})
    return result


def _decorate(question: str, rng: random.Random) -> str:
    first = question[0].lower() + question[1:] if question[:2] != "I " and question[:2] != "I'" else question
    return f"{rng.choice(OPENERS)}{first}{rng.choice(CLOSERS)}"


def chat_examples(facts: dict, intents: list[dict], rng: random.Random) -> list[dict]:
    system = {"role": "system", "content": facts["system_prompt"]}
    examples = []
    for intent in intents:
        for question in intent["questions"]:
            variants = [question] + ([_decorate(question, rng)] if rng.random() < 0.75 else [])
            for text in variants:
                examples.append({"intent": intent["id"], "messages": [
                    system, {"role": "user", "content": text}, {"role": "assistant", "content": intent["answer"]}]})
        if intent["followup"]:
            for number, question in enumerate(intent["questions"]):
                first = {"role": "assistant", "content": intent["answer"]}
                if number % 2:
                    first["weight"] = 0  # the first answer is context here; train only on the follow-up
                examples.append({"intent": intent["id"], "messages": [
                    system, {"role": "user", "content": question}, first,
                    {"role": "user", "content": intent["followup"]["question"]},
                    {"role": "assistant", "content": intent["followup"]["answer"]}]})
    rng.shuffle(examples)
    return examples


TICKETS = {
    "access": ["I can't log in to {app} since this morning.", "Please give me access to the {team} shared folder.",
               "My account is locked after the password change.", "I need {app} permissions for my new role.",
               "Password expired while I was on leave, can't sign in.", "New colleague in {office} has no account yet.",
               "MFA prompt never arrives on my phone.", "Request temporary admin rights for a {app} install."],
    "hardware": ["The screen of my {device} is flickering.", "My {device} battery lasts less than an hour.",
                 "The {office} printer on floor 2 is jammed.", "Docking station in {office} does not detect my monitor.",
                 "Keyboard on my {device} has a broken key.", "The meeting room screen in {office} stays black.",
                 "My {device} fan is very loud and it gets hot.", "Headset microphone not working in Teams calls."],
    "network": ["Wi-Fi in the {office} office keeps dropping.", "VPN disconnects every few minutes from home.",
                "GlobalProtect shows error 809 at the hotel.", "Very slow network in {office} since Monday.",
                "Cannot reach the {app} server from the VPN.", "Network cable port at my desk in {office} is dead.",
                "Guest Wi-Fi in {office} does not load the login page.", "DNS errors when opening internal sites."],
    "software": ["{app} crashes when I open a report.", "How do I install {app} on my {device}?",
                 "{app} says my license has expired.", "Outlook search does not find older mails.",
                 "Teams will not start after the update.", "{app} is very slow since the latest version.",
                 "Excel macros are blocked on my {device}.", "OneDrive stopped syncing my files."],
    "security": ["I received a suspicious email asking for my payroll details.", "I clicked a link in a phishing mail.",
                 "My {device} was stolen from my car.", "Someone called claiming to be IT and asked for my code.",
                 "Antivirus warning popped up on my {device}.", "I found a USB stick in the {office} car park.",
                 "Lost my badge in {office}.", "A colleague shared a password in the team chat."],
}


TICKET_OPENERS = ["", "", "Hi IT, ", "Urgent: ", "Hello, ", "Since yesterday: ", "Please help: "]
TICKET_CLOSERS = ["", "", " Thanks.", " Can someone look at it today?", " Ticket from the {office} office.",
                  " Working from home today."]


def classification_examples(facts: dict, rng: random.Random, per_label: int = 40) -> list[dict]:
    """`per_label` distinct ticket texts per label (balanced classes, no duplicates)."""
    fills = {"app": [app["name"] for app in facts["apps"]] + ["Outlook", "SAP"],
             "office": [office["name"] for office in facts["offices"]],
             "device": [system["device"] for system in facts["systems"]],
             "team": ["Finance", "Operations", "Sales", "HR"]}
    examples = []
    for label, templates in TICKETS.items():
        texts: list[str] = []
        while len(texts) < per_label:
            values = {key: rng.choice(options) for key, options in fills.items()}
            body = rng.choice(templates).format(**values)
            text = f"{rng.choice(TICKET_OPENERS)}{body}{rng.choice(TICKET_CLOSERS).format(**values)}"
            if text not in texts:
                texts.append(text)
        examples.extend({"text": text, "label": label} for text in texts)
    rng.shuffle(examples)
    return examples


BAD_ANSWERS = [
    "Have you tried turning it off and on again? If that doesn't help, contact IT.",
    "Please send me your password and I'll take a look from here.",
    "This is a known issue. Someone will get back to you eventually.",
    "You need to contact your administrator.",
    "I'm not sure. Maybe search online for a fix?",
]


def preference_examples(facts: dict, intents: list[dict], rng: random.Random) -> list[dict]:
    system = {"role": "system", "content": facts["system_prompt"]}
    picked = rng.sample(intents, 40)
    return [{"input": {"messages": [system, {"role": "user", "content": rng.choice(intent["questions"])}]},
             "preferred_output": [{"role": "assistant", "content": intent["answer"]}],
             "non_preferred_output": [{"role": "assistant", "content": rng.choice(BAD_ANSWERS)}]}
            for intent in picked]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row, ensure_ascii=False, separators=(", ", ": ")) + "\n" for row in rows),
                    encoding="utf-8")


def main() -> None:
    facts = yaml.safe_load((HERE / "facts.yaml").read_text(encoding="utf-8"))
    templates = yaml.safe_load((HERE / "templates.yaml").read_text(encoding="utf-8"))
    intents = [expanded for intent in templates["intents"] for expanded in _expand(intent, facts)]
    write_jsonl(HERE / "support-chat.jsonl", chat_examples(facts, intents, random.Random(SEED)))
    write_jsonl(HERE / "tickets-classification.jsonl", classification_examples(facts, random.Random(SEED + 1)))
    write_jsonl(HERE / "preferences.jsonl", preference_examples(facts, intents, random.Random(SEED + 2)))


if __name__ == "__main__":
    main()
