"""Azure ML v2 YAML (``kubernetesOnlineEndpoint`` / ``kubernetesOnlineDeployment``, and the
managed online keys where they make sense) into domain specs. Nothing here calls a back end
(applying a spec to a workspace is :mod:`services.apply`). The rooms:

* :mod:`.yamlload`: the one bounded YAML reader;
* :mod:`.document`: a YAML document with the line of each key (errors name it);
* :mod:`.schema`: the declarative schema (:class:`~.schema.Shape`), its key checks
  ("blue.yml: line 7: unknown key 'instance_cont' in deployment; did you mean
  'instance_count'?") and readers (enum values case-insensitive, as ``az ml`` takes them);
* :mod:`.setargs`: az's generic update arguments (``--set``/``--add``/``--remove``),
  applied to the YAML before it is read;
* one module per shape: :mod:`.endpoint`, :mod:`.deployment`, :mod:`.model`,
  :mod:`.environment` (an image, a registered or curated reference, or an inline mapping
  whose ``conda_file`` is read and resolved here);
* :mod:`.flags`: command-line values that are not YAML (``--tag``, ``--traffic`` ...).

Every problem is an :class:`InvalidInput` naming where (file and line, or the ``--set``),
the field, the value, the rule and the fix. ``yaml`` is imported only when a file is read.
"""
