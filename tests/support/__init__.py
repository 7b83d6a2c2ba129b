"""Test support: the fixtures and fake servers that more than one test folder uses.

Imported as ``tests.support.<module>`` (pytest's importlib mode puts no test folder on
``sys.path``; pyproject's ``pythonpath = ["."]`` puts the repository root there):

- ``cli``: the installed console script (``modeldeck_command``, ``ConsoleScript``: run in its
  own home and folder) and a run's ``Result``;
- ``daemon``: a real control plane daemon in a temporary MODELDECK_HOME (``running_home``,
  ``home_env``, ``stop_daemon``; the fixtures ``daemon_home``, ``fresh_home``, ``workspace``);
- ``dataplane``: replicas, supervisor, gateway and pool driver of the local data plane;
- ``polling``: ``eventually``, waiting (bounded) until a condition holds, with or without
  the dashboard's Pilot;
- ``fake_apiserver``: the Kubernetes API server on loopback (``FakeKube``, kubeconfigs);
- ``fake_arm``: the ARM server on loopback, the static token credential it accepts and
  ``open_cloud_workspace`` (the profile path against it);
  ``arm_spec``: the REST spec's JSON Schemas it validates request bodies against.
"""
