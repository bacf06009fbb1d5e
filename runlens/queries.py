"""The GraphQL documents runlens sends, each named after its operation.

Fields are chosen from Dagster's schema as served by 1.12-1.13 (see the shared notes on
the API). Two rules shape them:

* never select ``... on RunEvent { pipelineName }``: one event type declares it
  non-null and returns null on asset jobs, which fails the whole query with HTTP 500;
* keep per-event selections small: a run can hold 50,000+ events, and the run id
  (46 bytes an event) is known already, so it is not asked for.
"""

ERROR_FIELDS = """
fragment RunlensErrorFields on PythonError {
  message
  className
  stack
  cause { message className stack cause { message className } }
}
"""

EVENTS = (
    """
query RunlensEvents($runId: ID!, $afterCursor: String, $limit: Int) {
  logsForRun(runId: $runId, afterCursor: $afterCursor, limit: $limit) {
    __typename
    ... on EventConnection {
      cursor
      hasMore
      events {
        __typename
        ... on MessageEvent { message timestamp level stepKey eventType }
        ... on ErrorEvent { error { ...RunlensErrorFields } }
        ... on MaterializationEvent { assetKey { path } }
        ... on ObservationEvent { assetKey { path } }
      }
    }
    ... on RunNotFoundError { message }
    ... on PythonError { message className stack }
  }
}
"""
    + ERROR_FIELDS
)

RUN_FIELDS = """
fragment RunlensRunFields on Run {
  id
  status
  jobName
  pipelineName
  mode
  creationTime
  startTime
  endTime
  updateTime
  rootRunId
  parentRunId
  tags { key value }
}
"""

RUN = (
    """
query RunlensRun($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run {
      ...RunlensRunFields
      runConfigYaml
      stats {
        __typename
        ... on RunStatsSnapshot {
          stepsSucceeded stepsFailed materializations expectations
          enqueuedTime launchTime startTime endTime
        }
      }
    }
    ... on RunNotFoundError { message }
    ... on PythonError { message className stack }
  }
}
"""
    + RUN_FIELDS
)

RUNS = (
    """
query RunlensRuns($filter: RunsFilter, $cursor: String, $limit: Int) {
  runsOrError(filter: $filter, cursor: $cursor, limit: $limit) {
    __typename
    ... on Runs { count results { ...RunlensRunFields } }
    ... on InvalidPipelineRunsFilterError { message }
    ... on PythonError { message className stack }
  }
}
"""
    + RUN_FIELDS
)

STEP_STATS = """
query RunlensStepStats($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run {
      id
      stepStats {
        stepKey
        status
        startTime
        endTime
        attempts { startTime endTime }
        markers { startTime endTime }
      }
    }
    ... on RunNotFoundError { message }
    ... on PythonError { message className stack }
  }
}
"""

RUN_STATUS = """
query RunlensRunStatus($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { id status }
    ... on RunNotFoundError { message }
    ... on PythonError { message className stack }
  }
}
"""

EXECUTION_PLAN = """
query RunlensExecutionPlan($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run {
      id
      executionPlan { steps { key kind inputs { name dependsOn { key } } } }
      stepStats { stepKey }
    }
    ... on RunNotFoundError { message }
    ... on PythonError { message className stack }
  }
}
"""

RUNS_STEP_STATS = """
query RunlensRunsStepStats($filter: RunsFilter, $cursor: String, $limit: Int) {
  runsOrError(filter: $filter, cursor: $cursor, limit: $limit) {
    __typename
    ... on Runs {
      results {
        id jobName status creationTime startTime endTime
        tags { key value }
        stepStats { stepKey status startTime endTime attempts { startTime endTime } markers { startTime endTime } }
      }
    }
    ... on InvalidPipelineRunsFilterError { message }
    ... on PythonError { message className stack }
  }
}
"""
