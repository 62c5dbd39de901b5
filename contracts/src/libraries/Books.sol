// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IJobMarket} from "../interfaces/IJobMarket.sol";

/// @notice JobMarket's books: the storage that the market and its linked {ReplicatedJobs}
///         library both work on (the library runs by DELEGATECALL, on the market's storage,
///         and gets a pointer to this struct). Money invariant: see {IJobMarket}.
/// @param feesOwed Protocol fees accrued and not yet withdrawn.
/// @param jobs Every job, by id.
/// @param free Free (withdrawable) credits per account.
/// @param providers Provider records.
/// @param sets Replica bookkeeping of replicated jobs (all zero for a single job).
/// @param replicas Replica `index` (claim order) of a replicated job.
struct Books {
    uint256 feesOwed;
    mapping(uint256 jobId => IJobMarket.Job) jobs;
    mapping(address account => uint256) free;
    mapping(address provider => IJobMarket.Provider) providers;
    mapping(uint256 jobId => IJobMarket.ReplicaSet) sets;
    mapping(uint256 jobId => mapping(uint256 index => IJobMarket.Replica)) replicas;
}
