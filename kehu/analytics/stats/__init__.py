"""The statistics behind the analytical CRM: pure functions on arrays, no database.

Tasks in ``kehu.analytics.tasks`` feed them data and store their results; pages only read
the stored results.
"""
