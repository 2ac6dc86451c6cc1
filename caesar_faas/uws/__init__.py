"""The IVOA UWS 1.1 face of the job store (ARCHITECTURE §11), with VOSI availability and
capabilities, one service per app at /function/uws/<app>/.

A thin layer over caesar_faas.jobs: a job created here is an ordinary job record (so it is
listed by /function/jobs and the caesar-rest routes), and every native job of the app is a UWS
job here. Modules, one concern each:
  phases     native states <-> UWS execution phases, error types, PHASE filters
  params     form parameters -> a native submission (case-insensitive names, typed values)
  fetch      inputfile given as a URL: fetched into the caller's storage first
  documents  the XML documents (uws:job, uws:jobs, uws:results, uws:parameters, VOSI)
  service    the operations: list, create, read, phase, duration, destruction, delete, results
  answers    HTTP answers in UWS style: XML, text/plain, 303 redirects, text errors
"""
