from django.core.management.base import BaseCommand, CommandError

from kehu.system.demo import DEMO_PASSWORD, USERS, DemoRefused, demo_data_load


class Command(BaseCommand):
    help = "Load the demo company and its users (demo mode only; safe to run again)."

    def handle(self, *args, **options):
        try:
            created = demo_data_load()
        except DemoRefused as exc:
            raise CommandError(str(exc)) from exc
        counts = ", ".join(f"{count} {name}" for name, count in created.items())
        self.stdout.write(f"Demo data ready (new rows: {counts}).")
        if options.get("verbosity", 1) > 1:
            names = ", ".join(u.username for u in USERS)
            self.stdout.write(f"Logins: {names}; password: {DEMO_PASSWORD}")
