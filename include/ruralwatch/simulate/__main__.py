from ruralwatch.simulate.cli import app

app(prog_name="ruralwatch simulate")
