from carnival.cli import app

app()
