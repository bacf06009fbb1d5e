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

#: What runlens asks of each event: ``logsForRun`` here and the ``pipelineRunLogs``
#: subscription (:mod:`runlens.push`) select the same, so both build the same frames.
EVENT_FIELDS = """        __typename
        ... on MessageEvent { message timestamp level stepKey eventType }
        ... on ErrorEvent { error { ...RunlensErrorFields } }
        ... on MaterializationEvent { assetKey { path } }
        ... on ObservationEvent { assetKey { path } }
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
"""
    + EVENT_FIELDS
    + """      }
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

# Step stats of many runs in one request (a light sync, a baseline): the runs' own
# fields too, paged by ``cursor``.
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

# Asset keys with their definition (null for an asset known only from its history) and
# the last materialization (epoch milliseconds, a float), and the storage id of the last
# event (``latestEventSortKey``: the History sync fetches an asset only when it moved). Keys page by ``cursor``.
ASSETS = """
query RunlensAssets($prefix: [String!], $cursor: String, $limit: Int) {
  assetsOrError(prefix: $prefix, cursor: $cursor, limit: $limit) {
    __typename
    ... on AssetConnection {
      cursor
      nodes {
        key { path }
        definition { groupName isPartitioned }
        latestMaterializationTimestamp
        latestEventSortKey
      }
    }
    ... on PythonError { message className stack }
  }
}
"""

# Every metadata entry type Dagster 1.12-1.13 serves, each with the fields that hold its
# value. ``intValue`` is a 32-bit GraphQL Int (null above 2**31): ``intRepr`` is exact;
# ``floatRepr`` carries nan and inf, which ``floatValue`` cannot.
METADATA_FIELDS = """
fragment RunlensMetadata on MetadataEntry {
  __typename
  label
  ... on IntMetadataEntry { intRepr }
  ... on FloatMetadataEntry { floatRepr }
  ... on BoolMetadataEntry { boolValue }
  ... on TextMetadataEntry { text }
  ... on MarkdownMetadataEntry { mdStr }
  ... on PathMetadataEntry { path }
  ... on NotebookMetadataEntry { path }
  ... on UrlMetadataEntry { url }
  ... on JsonMetadataEntry { jsonString }
  ... on TimestampMetadataEntry { timestamp }
  ... on PipelineRunMetadataEntry { runId }
  ... on AssetMetadataEntry { assetKey { path } }
  ... on JobMetadataEntry { jobName }
  ... on PoolMetadataEntry { pool }
  ... on PythonArtifactMetadataEntry { module name }
  ... on TableMetadataEntry { table { records } }
  ... on TableSchemaMetadataEntry { schema { columns { name type } } }
}
"""

# ``assetEventHistory`` rather than ``assetMaterializations``: it has a real cursor (a
# storage id; pages run newest first) and returns failed materializations too. An
# unknown key answers an ``Asset`` with no definition and no ``latestEventSortKey``
# (Dagster 1.13 never answers ``AssetNotFoundError`` here).
ASSET_EVENTS = (
    """
query RunlensAssetEvents($assetKey: AssetKeyInput!, $selectors: [AssetEventHistoryEventTypeSelector!]!,
                         $partitions: [String!], $before: String, $after: String, $limit: Int!, $cursor: String) {
  assetOrError(assetKey: $assetKey) {
    __typename
    ... on Asset {
      latestEventSortKey
      definition { isPartitioned }
      assetEventHistory(eventTypeSelectors: $selectors, partitions: $partitions, beforeTimestampMillis: $before,
                        afterTimestampMillis: $after, limit: $limit, cursor: $cursor) {
        cursor
        results {
          __typename
          ... on MaterializationEvent {
            runId timestamp stepKey partition eventType description metadataEntries { ...RunlensMetadata }
          }
          ... on FailedToMaterializeEvent {
            runId timestamp stepKey partition eventType description materializationFailureReason
            metadataEntries { ...RunlensMetadata }
          }
          ... on ObservationEvent {
            runId timestamp stepKey partition eventType description metadataEntries { ...RunlensMetadata }
          }
        }
      }
    }
    ... on AssetNotFoundError { message }
  }
}
"""
    + METADATA_FIELDS
)

# Compute logs (runlens.logs): the LOGS_CAPTURED events of a run, where each file is
# served, and the file's text page by page where no download URL is.
LOGS_CAPTURED = """
query RunlensLogsCaptured($runId: ID!, $afterCursor: String, $limit: Int) {
  logsForRun(runId: $runId, afterCursor: $afterCursor, limit: $limit) {
    __typename
    ... on EventConnection {
      cursor
      hasMore
      events {
        __typename
        ... on LogsCapturedEvent { fileKey stepKeys externalStdoutUrl externalStderrUrl }
      }
    }
    ... on RunNotFoundError { message }
    ... on PythonError { message className stack }
  }
}
"""

CAPTURED_LOGS_METADATA = """
query RunlensCapturedLogsMetadata($logKey: [String!]!) {
  capturedLogsMetadata(logKey: $logKey) { stdoutDownloadUrl stderrDownloadUrl }
}
"""

CAPTURED_LOGS = """
query RunlensCapturedLogs($logKey: [String!]!, $cursor: String, $limit: Int) {
  capturedLogs(logKey: $logKey, cursor: $cursor, limit: $limit) { stdout stderr cursor }
}
"""
